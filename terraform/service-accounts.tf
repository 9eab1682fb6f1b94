# The worker's identity, with least privilege: read and write objects in the lake bucket only,
# edit data in the warehouse dataset only, run (load) jobs in the project, and read any job in
# the project by id.
resource "google_service_account" "worker" {
  account_id   = "mta-ingest"
  display_name = "mta-ingest worker"
  description  = "Runs mta-ingest: writes the lake bucket and loads the BigQuery dataset."

  depends_on = [google_project_service.apis]
}

# Objects: create, read, list, overwrite and delete, in this bucket only (objectUser is
# objectAdmin without object ACL and IAM management).
resource "google_storage_bucket_iam_member" "worker_objects" {
  bucket = google_storage_bucket.lake.name
  role   = "roles/storage.objectUser"
  member = google_service_account.worker.member
}

# storage.buckets.get on this bucket: before uploading anything, the BigQuery warehouse reads
# the bucket's location to check that BigQuery can load from it. No object role includes it;
# legacyBucketReader is that permission plus listing objects.
resource "google_storage_bucket_iam_member" "worker_bucket_metadata" {
  bucket = google_storage_bucket.lake.name
  role   = "roles/storage.legacyBucketReader"
  member = google_service_account.worker.member
}

# Tables in this dataset only: the load jobs' WRITE_TRUNCATE into a partition, the view
# turnstile_intervals the worker creates, reading tables back.
resource "google_bigquery_dataset_iam_member" "worker_data" {
  dataset_id = google_bigquery_dataset.warehouse.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.worker.member
}

# Load jobs run in the project (a job is a project resource; the data it may touch is
# limited by the roles above).
resource "google_project_iam_member" "worker_jobs" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.worker.member
}

# bigquery.jobs.get on every job in the project, and nothing else. jobUser lets the worker see
# only the jobs it created itself, but the worker reads load jobs by their deterministic id
# whoever created them (src/warehouse/bigquery/bigquery-warehouse.ts): loadedWeek() gets the
# job the lake's manifest records, and startJob() gets the existing job after a 409 on insert.
# Either job may have been started by another identity (a run from a developer's machine with
# their own credentials, or under another service account), and without this permission the
# worker would get 403 instead of the job. Predefined roles that include jobs.get (e.g.
# bigquery.resourceViewer) grant more. It does let the worker read the configuration of the
# project's other jobs, query text included: give mta-ingest a project of its own if that
# matters.
resource "google_project_iam_custom_role" "job_reader" {
  project     = var.project_id
  role_id     = "mtaIngestJobReader"
  title       = "mta-ingest job reader"
  description = "Get any BigQuery job in the project by id (mta-ingest reads load jobs that another identity may have started)."
  permissions = ["bigquery.jobs.get"]

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "worker_job_reader" {
  project = var.project_id
  role    = google_project_iam_custom_role.job_reader.name
  member  = google_service_account.worker.member
}

# GKE pods (Workload Identity) and GitHub Actions (Workload Identity Federation) acting as the
# worker, when listed.
resource "google_service_account_iam_member" "worker_workload_identity" {
  for_each = toset(var.workload_identity_members)

  service_account_id = google_service_account.worker.name
  role               = "roles/iam.workloadIdentityUser"
  member             = each.value
}

# Cloud Scheduler's identity: it may start the weekly job and nothing else.
resource "google_service_account" "scheduler" {
  account_id   = "mta-ingest-scheduler"
  display_name = "mta-ingest weekly trigger"
  description  = "Cloud Scheduler calls the Cloud Run Admin API as this account to run the weekly job."

  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_weekly" {
  name     = google_cloud_run_v2_job.weekly.name
  location = google_cloud_run_v2_job.weekly.location
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}
