# Two Cloud Run jobs run the same image as the worker's service account. The weekly one has a
# single task (`run`: the latest drop date). The backfill one fans out: each of its tasks takes a
# disjoint share of the selected drop dates from CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT,
# which Cloud Run sets in every task. Settings come from the environment; credentials from the
# service account (Application Default Credentials through the metadata server).

resource "google_cloud_run_v2_job" "weekly" {
  name                = "mta-ingest-weekly"
  location            = var.region
  deletion_protection = false
  labels              = local.labels

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.worker.email
      timeout         = "${var.task_timeout_seconds}s"
      max_retries     = var.max_retries

      containers {
        image = var.image
        args  = ["run"]

        env {
          name  = "MTA_INGEST_LAKE"
          value = local.lake_uri
        }
        env {
          name  = "MTA_INGEST_WAREHOUSE"
          value = local.warehouse_uri
        }

        resources {
          limits = {
            cpu    = var.cpu
            memory = var.memory
          }
        }
      }
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_job" "backfill" {
  name                = "mta-ingest-backfill"
  location            = var.region
  deletion_protection = false
  labels              = local.labels

  template {
    task_count  = var.backfill_task_count
    parallelism = var.backfill_parallelism

    template {
      service_account = google_service_account.worker.email
      timeout         = "${var.task_timeout_seconds}s"
      max_retries     = var.max_retries

      containers {
        image = var.image
        args  = var.backfill_args

        env {
          name  = "MTA_INGEST_LAKE"
          value = local.lake_uri
        }
        env {
          name  = "MTA_INGEST_WAREHOUSE"
          value = local.warehouse_uri
        }

        resources {
          limits = {
            cpu    = var.cpu
            memory = var.memory
          }
        }
      }
    }
  }

  depends_on = [google_project_service.apis]
}
