# Two Cloud Run jobs run the same image as the worker's service account. The weekly one has a
# single task (`run`: the latest drop date). The backfill one fans out: each of its tasks takes a
# disjoint share of the selected drop dates from CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT,
# which Cloud Run sets in every task. Settings come from the environment; credentials from the
# service account (Application Default Credentials through the metadata server).
#
# max_retries = 0, not a variable: Cloud Run retries a task on any non-zero exit and cannot tell
# exit codes apart, so any retry would also rerun a usage error (exit 2: bad arguments or
# settings, the same on every try), a week that is not published yet (3) and a suspect week (4),
# none of which a retry minutes later changes. Failures that a retry could heal are retried inside
# the worker (fetch with backoff, GCS and BigQuery client retries), a failed weekly run's week is
# caught up by the next weekly run, and a failed backfill task is rerun by hand
# (README, "Cloud Run Jobs").

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
      max_retries     = 0

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
      max_retries     = 0

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
