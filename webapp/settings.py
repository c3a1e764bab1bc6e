"""Frontier settings, read from the environment (django-environ).

With nothing set, Frontier runs on the embedded default: SQLite (WAL) and Celery over kombu's
filesystem transport, both under FRONTIER_VAR_DIR (default ./var). Production sets
DATABASE_URL (PostgreSQL), CELERY_BROKER_URL (RabbitMQ), SECRET_KEY, ALLOWED_HOSTS and,
behind TLS, FRONTIER_HTTPS=true. README.md lists every variable.
"""

import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from webapp.jobs.task_names import REAP
from webapp.jobs.task_names import ROUTES as TASK_ROUTES

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

VAR_DIR = Path(env.str("FRONTIER_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)


def _local_secret_key() -> str:
    """A random key kept under var/, so the embedded default needs no configuration."""
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "webapp.accounts",
    "webapp.jobs",
    "webapp.registry",
    "webapp.fits",
    "webapp.leaderboard",
    "webapp.training",
    "webapp.core",
    "webapp.stack",
    "webapp.pages",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'frontier.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets the web process read while a worker writes; IMMEDIATE takes the write
            # lock at BEGIN so concurrent writers queue on busy_timeout instead of failing.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
    # A file, not :memory:, so worker subprocesses started by tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-frontier.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
# Anyone may create an account at /accounts/signup/ when true; off by default (accounts from the admin).
FRONTIER_SIGNUP_ENABLED = env.bool("FRONTIER_SIGNUP_ENABLED", default=False)
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files: static, media, checkpoints and artifacts -----------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "webapp.pages.staticfinders.PlotlyFinder",  # plotly.min.js from the installed plotly package
]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))).resolve()

S3_BUCKET = env.str("S3_BUCKET", default="")
if S3_BUCKET:
    # Shared object storage: web and GPU workers on different machines see the same files.
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env.str("S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("S3_REGION", default="us-east-1"),
            "access_key": env.str("S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("S3_SECRET_ACCESS_KEY", default="") or None,
            "addressing_style": env.str("S3_ADDRESSING_STYLE", default="path"),
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security ---------------------------------------------------------------------------------
FRONTIER_HTTPS = env.bool("FRONTIER_HTTPS", default=False)
SESSION_COOKIE_SECURE = FRONTIER_HTTPS
CSRF_COOKIE_SECURE = FRONTIER_HTTPS
SECURE_SSL_REDIRECT = FRONTIER_HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if FRONTIER_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = FRONTIER_HTTPS
SECURE_HSTS_PRELOAD = FRONTIER_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if FRONTIER_HTTPS else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
X_FRAME_OPTIONS = "DENY"

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "webapp.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "webapp.core.parsers.BoundedJSONParser",  # JSON nesting bounded (core.limits)
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "webapp.core.api.frontier_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("FRONTIER_THROTTLE_USER", default="3000/hour"),
        # Leaderboard, frontier, compressor, deploy and version reads (open to anonymous users;
        # pages poll the version every second). A per-second window keeps DRF's request history short.
        "leaderboard": env.str("FRONTIER_THROTTLE_LEADERBOARD", default="30/second"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Frontier API",
    "DESCRIPTION": "Submit VLM checkpoints, run evaluations, read results. Auth: `Authorization: Token frt_…`.",
    "VERSION": "1",
    # Swagger UI from our own static files: nothing loads from the internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"JobStateEnum": "webapp.jobs.models.JobState"},
}

# --- Celery (read by workers/celery_app.py through the CELERY_ namespace) --------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport with message names that sort in put order (webapp/core/broker.py).
    CELERY_BROKER_TRANSPORT = "webapp.core.broker:Transport"
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the database row is the result
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A broker that closes the connection (e.g. RabbitMQ's consumer_timeout) must not kill a
# GPU job that is hours in: the job's database lease decides who runs it, not the message.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=10 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=11 * 60)
CELERY_WORKER_SEND_TASK_EVENTS = True  # for Flower
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_TASK_DEFAULT_QUEUE = "cpu"
FRONTIER_QUEUES = ("gpu-eval", "gpu-train", "cpu")
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in FRONTIER_QUEUES]
# One worker process per pool, as docker-compose's worker-gpu and worker-cpu (and `make run`) start
# them: short cpu jobs (validation, refit, the reaper) never wait behind hours-long GPU jobs. The
# queue page's ETAs count the queues of one pool as sharing that worker's slots.
FRONTIER_WORKER_POOLS = {"gpu": ("gpu-eval", "gpu-train"), "cpu": ("cpu",)}
CELERY_TASK_ROUTES = TASK_ROUTES  # webapp/jobs/task_names.py: every task, its queue
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Jobs: lease, heartbeat, reaper (see webapp/jobs and README "Jobs") ------------------------
FRONTIER_JOB_HEARTBEAT_SECONDS = env.float("FRONTIER_JOB_HEARTBEAT_SECONDS", default=10.0)
FRONTIER_JOB_LEASE_SECONDS = env.float("FRONTIER_JOB_LEASE_SECONDS", default=60.0)
FRONTIER_JOB_MAX_ATTEMPTS = env.int("FRONTIER_JOB_MAX_ATTEMPTS", default=3)
# Tries lost to the platform (worker killed, database or storage away) have their own cap (jobs.services._tries_spent).
FRONTIER_JOB_MAX_PLATFORM_FAILURES = env.int("FRONTIER_JOB_MAX_PLATFORM_FAILURES", default=8)
FRONTIER_REAPER_INTERVAL_SECONDS = env.float("FRONTIER_REAPER_INTERVAL_SECONDS", default=30.0)
FRONTIER_JOB_LOG_TAIL_LINES = 200
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {
        "task": REAP.name,
        "schedule": FRONTIER_REAPER_INTERVAL_SECONDS,
        "options": {"expires": FRONTIER_REAPER_INTERVAL_SECONDS},
    },
}

# --- Checkpoint uploads and quotas -----------------------------------------------------------
FRONTIER_DEFAULT_SUITES = env.list("FRONTIER_DEFAULT_SUITES", default=["synthetic"])
# Items per benchmark of the evaluations queued when a checkpoint becomes ready (unset: all).
FRONTIER_AUTO_EVAL_LIMIT = env.int("FRONTIER_AUTO_EVAL_LIMIT", default=None)
FRONTIER_UPLOAD_MAX_BYTES = env.int("FRONTIER_UPLOAD_MAX_BYTES", default=64 * 1024**3)
FRONTIER_UPLOAD_CHUNK_BYTES = env.int("FRONTIER_UPLOAD_CHUNK_BYTES", default=16 * 1024**2)
FRONTIER_UPLOAD_EXPIRY_HOURS = env.float("FRONTIER_UPLOAD_EXPIRY_HOURS", default=48)
# Folders of the workers' shared storage that checkpoints may be registered from by path;
# empty disables registration by path.
FRONTIER_REFERENCE_ROOTS = env.list("FRONTIER_REFERENCE_ROOTS", default=[])
FRONTIER_ARCHIVE_MAX_FILES = env.int("FRONTIER_ARCHIVE_MAX_FILES", default=10_000)
FRONTIER_ARCHIVE_MAX_RATIO = env.float("FRONTIER_ARCHIVE_MAX_RATIO", default=200.0)
FRONTIER_QUOTA_CONCURRENT_RUNS = env.int("FRONTIER_QUOTA_CONCURRENT_RUNS", default=4)
FRONTIER_QUOTA_RUNS_PER_DAY = env.int("FRONTIER_QUOTA_RUNS_PER_DAY", default=50)
FRONTIER_QUOTA_RERUNS_PER_RUN = env.int("FRONTIER_QUOTA_RERUNS_PER_RUN", default=3)
# Trainings per user, staff exempt: queued or running at once (a sweep counts as its points, so one full sweep
# of FRONTIER_TRAINING_SWEEP_MAX_POINTS fits), and started in the last 24 hours.
FRONTIER_QUOTA_CONCURRENT_TRAININGS = env.int("FRONTIER_QUOTA_CONCURRENT_TRAININGS", default=64)
FRONTIER_QUOTA_TRAININGS_PER_DAY = env.int("FRONTIER_QUOTA_TRAININGS_PER_DAY", default=256)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2  # larger multipart files are spooled to disk
DATA_UPLOAD_MAX_MEMORY_SIZE = FRONTIER_UPLOAD_CHUNK_BYTES + 1024**2
FILE_UPLOAD_TEMP_DIR = str(VAR_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(exist_ok=True)

# --- Evaluation workers -----------------------------------------------------------------------
FRONTIER_MODEL_CACHE_SIZE = env.int("FRONTIER_MODEL_CACHE_SIZE", default=2)
# The dataset mirror (evaluation.datasets): the hub datasets of the real benchmarks at pinned revisions, filled by
# `python -m evaluation datasets prefetch`. Workers read only this (they are offline); shared storage, mounted at
# the same path on web and worker hosts, like checkpoints. evaluation.datasets.mirror_root() reads the same default.
FRONTIER_DATASETS_DIR = Path(env.str("FRONTIER_DATASETS_DIR", default=str(VAR_DIR / "datasets-mirror"))).resolve()
# The LLM judge of MMBench and MathVista (evaluation.judges): an OpenAI-compatible server's base URL, the model it
# serves, its key if any. Unset: MMBench runs its rule-based variant, MathVista fails with judge_unavailable.
FRONTIER_JUDGE = {
    "FRONTIER_JUDGE_URL": env.str("FRONTIER_JUDGE_URL", default=""),
    "FRONTIER_JUDGE_MODEL": env.str("FRONTIER_JUDGE_MODEL", default=""),
    "FRONTIER_JUDGE_API_KEY": env.str("FRONTIER_JUDGE_API_KEY", default=""),
}

# --- Training (see webapp/training and README "Training") ----------------------------------------
# Resumable state of running trainings, one folder per run. With workers on several machines it must
# be shared storage (NFS or similar) mounted at the same path everywhere, so a run resumes on any host.
FRONTIER_TRAINING_DIR = Path(env.str("FRONTIER_TRAINING_DIR", default=str(VAR_DIR / "training"))).resolve()
# LLaVA-format datasets (JSON + image folder) must lie under this folder, as seen by web and workers.
FRONTIER_TRAINING_DATA_ROOT = Path(env.str("FRONTIER_TRAINING_DATA_ROOT", default=str(VAR_DIR / "datasets"))).resolve()
# Frozen-encoder features shared by training runs on the same tower and images (evaluation.feature_cache);
# local to each worker host, least recently used entries go first past the size.
FRONTIER_FEATURE_CACHE_DIR = Path(
    env.str("FRONTIER_FEATURE_CACHE_DIR", default=str(VAR_DIR / "cache" / "features"))
).resolve()
FRONTIER_FEATURE_CACHE_MAX_BYTES = env.int("FRONTIER_FEATURE_CACHE_MAX_BYTES", default=8 * 1024**3)
FRONTIER_TRAINING_SAVE_EVERY = env.int("FRONTIER_TRAINING_SAVE_EVERY", default=50)
FRONTIER_TRAINING_LOSS_FLUSH_SECONDS = env.float("FRONTIER_TRAINING_LOSS_FLUSH_SECONDS", default=2.0)
FRONTIER_TRAINING_CURVE_POINTS = env.int("FRONTIER_TRAINING_CURVE_POINTS", default=1000)
FRONTIER_TRAINING_SWEEP_MAX_POINTS = env.int("FRONTIER_TRAINING_SWEEP_MAX_POINTS", default=64)

# --- Fitting service ------------------------------------------------------------------------
FRONTIER_FIT_LAWS = env.list("FRONTIER_FIT_LAWS", default=["multiplicative", "additive"])
FRONTIER_FIT_QUERY_TOKENS = [float(q) for q in env.list("FRONTIER_FIT_QUERY_TOKENS", default=["0", "50"])]
FRONTIER_FIT_BOOTSTRAP_RESAMPLES = env.int("FRONTIER_FIT_BOOTSTRAP_RESAMPLES", default=1000)
# Which N the fits use (fitting.published): "counted" from the weights (rows with only a nominal size are left
# out), or "nominal" (the size in the model's name, as papers publish it; rows without one are left out).
FRONTIER_FIT_N_CONVENTION = env.str("FRONTIER_FIT_N_CONVENTION", default="counted")
if FRONTIER_FIT_N_CONVENTION not in ("counted", "nominal"):
    raise ImproperlyConfigured(
        f"FRONTIER_FIT_N_CONVENTION must be counted or nominal, not {FRONTIER_FIT_N_CONVENTION!r}"
    )
FRONTIER_REFIT_DELAY_SECONDS = env.float("FRONTIER_REFIT_DELAY_SECONDS", default=2.0)
# How long a web process reuses the data version it read (pages poll it; writes elsewhere show
# within this time, writes in the same process at once).
FRONTIER_DATA_VERSION_MAX_AGE_SECONDS = env.float("FRONTIER_DATA_VERSION_MAX_AGE_SECONDS", default=0.5)

# --- Health ---------------------------------------------------------------------------------
FRONTIER_HEALTH_TIMEOUT_SECONDS = env.float("FRONTIER_HEALTH_TIMEOUT_SECONDS", default=1.0)
# /healthz reports "degraded" (HTTP 200) while a queue's oldest queued job has waited longer than this
# since it was due; per-queue values (e.g. "gpu-train=7200;gpu-eval=3600") override it for that queue.
FRONTIER_QUEUE_STALL_SECONDS = env.float("FRONTIER_QUEUE_STALL_SECONDS", default=300.0)
# /healthz is degraded when the media or var disk has less free space than this (bytes).
FRONTIER_DISK_LOW_BYTES = env.int("FRONTIER_DISK_LOW_BYTES", default=2 * 10**9)
FRONTIER_QUEUE_STALL_SECONDS_BY_QUEUE = env.dict(
    "FRONTIER_QUEUE_STALL_SECONDS_BY_QUEUE", cast={"value": float}, default={}
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
