"""gunicorn settings for Cloud Run (used by the Dockerfile's CMD and the integration tests).

One worker process with threads: the TikTok rate limiter lives in the process, so a second
worker process would double the app's request rate. Concurrency comes from threads (each
/run fans out its own pool of request threads). Timeout above Cloud Run's 600 s request
limit; the service's own run deadline (RUN_DEADLINE_SECONDS, 540 s) ends a run first.
"""

import os
import signal

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8080')}"
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 660
# Cloud Run allows 10 s between SIGTERM and SIGKILL.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "9"))
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = "warning"


def post_worker_init(worker):
    """On SIGTERM, tell running /run requests to stop starting work, then shut down as usual."""
    import main

    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        main.shutdown_requested.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
