# mta-ingest on Google Cloud: the lake bucket and the BigQuery warehouse (this file), the
# worker's service account with least privilege (service-accounts.tf), the weekly and backfill
# Cloud Run jobs (cloud-run.tf) and the weekly trigger (scheduler.tf).

locals {
  lake_uri      = "gs://${google_storage_bucket.lake.name}/${var.lake_prefix}"
  warehouse_uri = "bigquery://${var.project_id}/${google_bigquery_dataset.warehouse.dataset_id}?location=${google_bigquery_dataset.warehouse.location}"
  labels        = { app = "mta-ingest" }
}

# iamcredentials: google-github-actions/auth with service_account, and GKE Workload Identity,
# mint the worker's access tokens through the IAM Service Account Credentials API
# (generateAccessToken). sts: the Security Token Service exchanges GitHub's OIDC token for a
# federated token; it is needed in this project when the GitHub workload identity pool lives
# here (harmless otherwise).
resource "google_project_service" "apis" {
  for_each = toset([
    "bigquery.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",
  ])

  service = each.value
  # Other workloads in the project may use these APIs too.
  disable_on_destroy = false
}

# The lake. Versioning keeps every overwritten or deleted object as a noncurrent version: a
# `--force` rerun replaces a week's objects, and the previous ones stay recoverable. No
# lifecycle rule ever deletes a live object; the only rule, when
# noncurrent_version_retention_days > 0, deletes noncurrent versions that old.
resource "google_storage_bucket" "lake" {
  name                        = var.bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = local.labels

  versioning {
    enabled = true
  }

  dynamic "lifecycle_rule" {
    for_each = var.noncurrent_version_retention_days > 0 ? [var.noncurrent_version_retention_days] : []

    content {
      condition {
        days_since_noncurrent_time = lifecycle_rule.value
        with_state                 = "ARCHIVED"
      }
      action {
        type = "Delete"
      }
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_bigquery_dataset" "warehouse" {
  dataset_id                 = var.dataset_id
  location                   = var.location
  description                = "NYC MTA weekly subway turnstile readings, loaded by mta-ingest."
  delete_contents_on_destroy = false
  labels                     = local.labels

  depends_on = [google_project_service.apis]
}

# The worker checks an existing table against src/schema/turnstile-schema.ts and refuses one
# that differs, so the schema file is generated from that module
# (node scripts/write-terraform-schema.ts) and a test keeps the two equal, with the
# partitioning and clustering below.
resource "google_bigquery_table" "turnstile_readings" {
  dataset_id          = google_bigquery_dataset.warehouse.dataset_id
  table_id            = "turnstile_readings"
  description         = "One row per turnstile reading; each weekly file replaces exactly its drop_date partition."
  schema              = file("${path.module}/turnstile_readings.schema.json")
  deletion_protection = true
  labels              = local.labels

  time_partitioning {
    type  = "DAY"
    field = "drop_date"
  }

  clustering = ["station", "unit", "scp"]
}
