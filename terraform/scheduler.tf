# Starts the weekly Cloud Run job every Sunday at 09:00 New York time through the Cloud Run Admin
# API, authenticated as the scheduler's own service account, which holds roles/run.invoker on
# that job only. The endpoint is the one Google documents for starting a job: the Admin API v2
# method projects.locations.jobs.run,
#   POST https://run.googleapis.com/v2/{name=projects/*/locations/*/jobs/*}:run
# (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs/run), called with
# an OAuth access token (not an OIDC ID token: googleapis.com APIs take OAuth tokens), as in
# "Execute jobs on a schedule" (https://cloud.google.com/run/docs/execute/jobs-on-schedule), whose
# example uses the equivalent v1 form
#   https://REGION-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/PROJECT/jobs/JOB:run.
resource "google_cloud_scheduler_job" "weekly" {
  name        = "mta-ingest-weekly"
  description = "Runs the mta-ingest weekly Cloud Run job (the latest drop date)."
  region      = var.region
  schedule    = var.weekly_schedule
  time_zone   = "America/New_York"
  # jobs:run answers as soon as the execution is created; the job itself may run for an hour.
  attempt_deadline = "180s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.weekly.name}:run"

    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_runs_weekly]
}
