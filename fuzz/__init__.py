"""Differential fuzzing of the native page reader (``controller/tiktok/native``) against the fallback.

``python -m fuzz.run --seconds N`` (``make fuzz``); see ``fuzz/run.py``.
"""
