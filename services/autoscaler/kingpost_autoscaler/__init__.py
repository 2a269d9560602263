"""kingpost autoscaler: decides replica counts from concurrency samples."""
