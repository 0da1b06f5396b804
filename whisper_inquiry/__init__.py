"""Whisper Inquiry: one instrumented Whisper run, returned as a plain-data `Trace`."""
