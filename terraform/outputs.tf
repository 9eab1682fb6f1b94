output "lake_uri" {
  description = "The worker's lake (MTA_INGEST_LAKE)."
  value       = local.lake_uri
}

output "warehouse_uri" {
  description = "The worker's warehouse (MTA_INGEST_WAREHOUSE)."
  value       = local.warehouse_uri
}

output "bucket_name" {
  description = "The lake bucket."
  value       = google_storage_bucket.lake.name
}

output "table_id" {
  description = "The readings table, as BigQuery names it."
  value       = "${var.project_id}.${google_bigquery_dataset.warehouse.dataset_id}.${google_bigquery_table.turnstile_readings.table_id}"
}

output "service_account_email" {
  description = "The worker's service account (Cloud Run jobs; Workload Identity for GKE and GitHub Actions)."
  value       = google_service_account.worker.email
}

output "weekly_job_name" {
  description = "The weekly Cloud Run job (gcloud run jobs execute NAME --region REGION)."
  value       = google_cloud_run_v2_job.weekly.name
}

output "backfill_job_name" {
  description = "The fan-out backfill Cloud Run job."
  value       = google_cloud_run_v2_job.backfill.name
}

output "scheduler_job_name" {
  description = "The Cloud Scheduler job that starts the weekly job."
  value       = google_cloud_scheduler_job.weekly.name
}
