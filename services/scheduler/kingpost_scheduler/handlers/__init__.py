"""The scheduler's gRPC faces: ManagementService (public; management.py, one module per resource)
and SchedulerService (internal; internal.py). Each handler validates, runs one transaction through
`Control` (a write ends with the reconcile pass), and converts rows to protos (convert.py); the
decisions are the pure modules'. Errors are kingpost.errors, ended by `abort_on_error`.
"""
