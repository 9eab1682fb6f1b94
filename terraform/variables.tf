variable "project_id" {
  description = "The Google Cloud project that holds the lake, the warehouse and the jobs."
  type        = string

  validation {
    # The form the worker's bigquery:// URI accepts.
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID: 6 to 30 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the Cloud Run jobs and the Cloud Scheduler job, e.g. us-central1."
  type        = string
  default     = "us-central1"
}

variable "location" {
  description = "Location of the lake bucket and the BigQuery dataset (the same, so BigQuery can load from the bucket): a multi-region (US, EU) or a region."
  type        = string
  default     = "US"
}

variable "bucket_name" {
  description = "Name of the lake bucket (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3 to 63 lowercase letters, digits, dots, hyphens and underscores."
  }
}

variable "lake_prefix" {
  description = "Folder inside the bucket that holds the lake (the worker's lake is gs://BUCKET/PREFIX)."
  type        = string
  default     = "mta-ingest"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$", var.lake_prefix))
    error_message = "lake_prefix must be a relative path without leading or trailing slashes."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days to keep a lake object's noncurrent (overwritten or deleted) versions before deleting them; 0 keeps them forever. Live objects are never deleted by a lifecycle rule."
  type        = number
  default     = 0

  validation {
    condition     = var.noncurrent_version_retention_days >= 0 && floor(var.noncurrent_version_retention_days) == var.noncurrent_version_retention_days
    error_message = "noncurrent_version_retention_days must be a whole number of days, 0 or more."
  }
}

variable "dataset_id" {
  description = "The BigQuery dataset that holds turnstile_readings."
  type        = string
  default     = "mta"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,1024}$", var.dataset_id))
    error_message = "dataset_id may hold only letters, digits and underscores."
  }
}

variable "image" {
  description = "The worker's image as Cloud Run pulls it, pinned to a version (e.g. myorg/mta-ingest:0.1.0 from Docker Hub)."
  type        = string
}

variable "weekly_schedule" {
  description = "When Cloud Scheduler starts the weekly job (cron, in America/New_York): Sunday 09:00, the morning after the MTA posts Saturday's file."
  type        = string
  default     = "0 9 * * 0"
}

variable "cpu" {
  description = "CPUs per task."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory per task. A week peaks at about 400 MB resident; /tmp (spools) is in memory on Cloud Run too."
  type        = string
  default     = "2Gi"
}

variable "task_timeout_seconds" {
  description = "Longest a task may run before Cloud Run stops it."
  type        = number
  default     = 3600

  validation {
    condition     = var.task_timeout_seconds >= 60 && var.task_timeout_seconds <= 86400
    error_message = "task_timeout_seconds must be between 60 and 86400."
  }
}

variable "backfill_args" {
  description = "Default arguments of the backfill job; an execution usually overrides them (gcloud run jobs execute ... --args=run,--year,2019)."
  type        = list(string)
  default     = ["run", "--year", "2022"]
}

variable "backfill_task_count" {
  description = "Tasks of a backfill execution; each takes a disjoint share of the drop dates (CLOUD_RUN_TASK_INDEX of CLOUD_RUN_TASK_COUNT)."
  type        = number
  default     = 4

  validation {
    condition     = var.backfill_task_count >= 1 && var.backfill_task_count <= 10000
    error_message = "backfill_task_count must be between 1 and 10000."
  }
}

variable "backfill_parallelism" {
  description = "Backfill tasks that run at once (at most backfill_task_count)."
  type        = number
  default     = 4

  validation {
    condition     = var.backfill_parallelism >= 1 && var.backfill_parallelism <= var.backfill_task_count
    error_message = "backfill_parallelism must be between 1 and backfill_task_count."
  }
}

variable "workload_identity_members" {
  description = "Principals allowed to act as the worker's service account through Workload Identity, e.g. serviceAccount:PROJECT.svc.id.goog[mta-ingest/mta-ingest] (a GKE Kubernetes service account) or a GitHub principalSet. Empty: Cloud Run only."
  type        = list(string)
  default     = []
}
