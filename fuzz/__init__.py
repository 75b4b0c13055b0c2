"""Differential fuzzing of the native page reader (``controller/native``) against the fallback.

``python -m fuzz.run --seconds N`` (``make fuzz``); see ``fuzz/run.py``.
"""
