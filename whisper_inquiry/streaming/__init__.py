"""Streaming Whisper, shown: a stream's updates and the policy that commits its words (policy.py, stream.py)."""
