"""Gunicorn settings for ``make run`` (``gunicorn -c gunicorn.conf.py wsgi:app``)."""
import multiprocessing
import os

bind = os.environ.get("CHANJIAO_BIND", "127.0.0.1:8000")
# No more workers than cores: each worker holds the encoder and runs one OpenMP thread.
workers = min(int(os.environ.get("CHANJIAO_WORKERS", 2)), multiprocessing.cpu_count())
threads = 1
timeout = 60
# The app (and any encoder) is created in each worker after the fork, never in the master:
# an encoder that has run OpenMP threads does not survive a fork.
preload_app = False
accesslog = "-"
raw_env = ["OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=passive", "HF_HUB_OFFLINE=1"]


def on_starting(server):
    """Refuse to start (the master exits with status 1 and says why) unless the instance and
    its database are ready; then create the secret key once, before any worker forks."""
    from chanjiao import startup
    from chanjiao.config import ensure_secret_key, instance_path

    if startup.wanted():
        startup.check_before_serving()
        # Checked once, here: a worker (re)started during a later outage serves 503s instead
        # of failing its own check in a loop.
        os.environ[startup.CHECK_ENV] = "0"
    if not os.environ.get("CHANJIAO_SECRET_KEY"):
        ensure_secret_key(instance_path())


def post_worker_init(worker):
    """Start this worker's background threads (the outbox runner unless RQ runs the queue,
    the scheduler's ticker, catalogue upkeep): after the fork, in the worker only."""
    from chanjiao.jobs.background import start
    from chanjiao.matchmaking import warm_up

    # The worker takes requests only once its catalogue is built (requests never build it);
    # the heartbeat keeps the master from taking a long build for a hung worker.
    warm_up(worker.wsgi, heartbeat=worker.notify)
    start(worker.wsgi)
