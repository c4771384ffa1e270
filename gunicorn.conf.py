"""gunicorn's settings when started from the project root (`gunicorn wsgi:app`): mailer's LoopWorker, one per core.

The LoopWorker keeps clients' connections open between requests and parses HTTP in C; gunicorn's
default sync worker spends as much CPU per request as the open pixel's own work (bench/README.md).
Options given on the command line win over these.
"""

import os

worker_class = "mailer.web.loop_worker.LoopWorker"
workers = os.cpu_count() or 2
