"""Hotline settings: one file, driven by the environment.

With no environment at all Hotline runs as a self-contained demo: SQLite in ./var/,
Celery tasks executed in-process, an in-memory cache. Production sets at least
SECRET_KEY, DATABASE_URL, REDIS_URL, ALLOWED_HOSTS and HOTLINE_FIELD_KEYS.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
# pytest imports this module through pytest-django; tests get the same dev fallbacks as DEBUG.
TESTING = "pytest" in sys.modules or env_bool("HOTLINE_TESTING")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789"
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG or TESTING else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Staff security (see the "Staff security" section below).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "two_factor",
    "axes",
    "ninja",
    "pgtrigger",
    "reports",
]

MIDDLEWARE = [
    # First, so that every log line of a request (and of the tasks it queues) carries its id.
    "reports.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from gunicorn, compressed and with far-future caching of hashed names.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "reports.middleware.SecurityHeadersMiddleware",
    "reports.middleware.BodySizeLimitMiddleware",
    # A database or Redis outage is a 503 with Retry-After, not a 500 (nothing was stored).
    "reports.middleware.ServiceUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Marks request.user verified (or not) by a second factor; right after authentication.
    "django_otp.middleware.OTPMiddleware",
    # Nothing under /staff/ runs for a user who has not passed the second factor.
    "reports.middleware.StaffOTPRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a lockout raised during authentication into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hotline.urls"
WSGI_APPLICATION = "hotline.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
VAR_DIR = Path(os.environ.get("HOTLINE_VAR_DIR", BASE_DIR / "var"))
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'hotline.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
# A reused connection is checked before each request: after a database restart the first request of
# every web and worker process would otherwise fail on a dead connection.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Several threads of runserver and in-process tasks share one file; wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, throttles) ---------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("HOTLINE_CACHE_PREFIX", "hotline"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ---------------------------------------------------------------------------------
# No broker (neither CELERY_BROKER_URL nor REDIS_URL): the same task code runs in-process (eagerly),
# so the demo needs no services. CELERY_BROKER_URL may put the broker elsewhere than the cache (e.g.
# another Redis database, so that clearing the cache can never drop queued work).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# How many messages each worker process reserves ahead. With acks_late a reserved message is only
# acknowledged after its task ran, so reserving more loses nothing when a worker dies (Redis delivers
# it again; the sweeper re-queues pending URLs sooner); it saves the broker round trip between short
# tasks (~0.5 ms of ~20 ms per image, benchmarks/pipeline.py). A slow fetch may hold up to 3 others.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "reports.tasks.fetching.*": {"queue": "fetch"},
    "reports.tasks.matching.*": {"queue": "match"},
    # A re-check is a fetch: it runs where fetching runs (network I/O, the fetch workers' limits).
    "reports.tasks.referrals.recheck_referral": {"queue": "fetch"},
}
# With acks_late, a task whose worker dies stays "unacknowledged" in Redis and is delivered again
# once it is older than the visibility timeout. Keep that timeout above the longest task
# (CELERY_TASK_TIME_LIMIT) and the longest retry countdown, or running tasks get delivered twice.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Workers look for such expired messages only every unacked_restore_interval seconds times
    # unacked_restore_throttle (kombu's defaults, 10 x 10: every ~100 s, plus once at start-up), so a
    # short visibility timeout was not honoured. Scan on every tick, at a quarter of the timeout (at
    # most every 10 s): one ZRANGE per worker per tick.
    "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 4)),
    "unacked_restore_throttle": 1,
}
if os.environ.get("CELERY_BROKER_KEY_PREFIX"):
    # Several deployments (or parallel test runs) sharing one Redis database keep apart by prefix.
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["CELERY_BROKER_KEY_PREFIX"]
CELERY_TIMEZONE = "UTC"
# Workers log through LOGGING below (the same format, JSON included, with request ids), not through the
# handler Celery would otherwise put on the root logger in place of ours.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fix-up closes every database connection before and after every task, whatever
# CONN_MAX_AGE says: a new PostgreSQL connection (a server process) per task. With a reuse limit
# it closes them only every this many tasks; hotline/celery.py closes broken or expired ones around
# each task as Django does around requests, so CONN_MAX_AGE (DB_CONN_MAX_AGE) governs workers too.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)

# --- Auth and sessions ----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True  # inactivity expiry: the clock restarts on every request
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# --- Staff security -------------------------------------------------------------------------
# Every staff login takes a password and a second factor (TOTP, or a one-time recovery code), for
# every role, admin included. There is deliberately no setting that switches this off:
# - the only login page is two_factor's (/account/login/); the Django admin is an
#   AdminSiteOTPRequired (hotline/urls.py), so its own password-only login form is gone;
# - staff views are wrapped in reports.views.decorators.staff_view and, as a second line,
#   reports.middleware.StaffOTPRequiredMiddleware refuses /staff/ to unverified sessions.
# Accounts are made by `manage.py create_staff`, which enrols the TOTP device at creation.
AUTHENTICATION_BACKENDS = [
    # First: refuses any authentication attempt by a locked-out username or address.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "two_factor:login"
LOGIN_REDIRECT_URL = "/staff/"
LOGOUT_REDIRECT_URL = "two_factor:login"
# Authenticator apps show this name next to the code.
OTP_TOTP_ISSUER = "Hotline"
# No "remember this browser": the second factor is asked at every login. (two_factor offers it
# only when TWO_FACTOR_REMEMBER_COOKIE_AGE is set; it is not, on purpose.)
# Time allowed between the password step and the token step of one login.
TWO_FACTOR_LOGIN_TIMEOUT = 300

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed passwords, the username and the
# client address are each locked out (even with the right password) for AXES_COOLOFF_HOURS.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_HOURS", 1)  # hours
# Each entry locks out on its own: a username from any address, an address for any username.
AXES_LOCKOUT_PARAMETERS = env_list("AXES_LOCKOUT_PARAMETERS", ["username", "ip_address"])
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "reports/staff/lockout.html"
# The same proxy-aware client address as the rate limits (HOTLINE_TRUSTED_PROXY_COUNT).
AXES_CLIENT_IP_CALLABLE = "reports.services.staff.login_client_ip"
# two_factor's login form prefixes its fields with the wizard step ("auth-username"); axes must know
# them, or it would lock out no username and keep the password in its attempt log.
AXES_USERNAME_CALLABLE = "reports.services.staff.login_attempt_username"
AXES_PASSWORD_FORM_FIELD = "auth-password"
# Masked in axes' logs and attempt records: its defaults (username, address) and the login form's secrets.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "auth-password", "token-otp_token", "backup-otp_token"]
# Successful logins go to the audit trail (reports.services.staff); no second, unchained log.
AXES_DISABLE_ACCESS_LOG = True

# --- Transport security (production) --------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG and not TESTING:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # Preloading is a commitment (browsers' built-in lists, hard to leave): a hotline opts in with
    # SECURE_HSTS_PRELOAD=1 and then submits its domain at hstspreload.org. Off, check --deploy's
    # reminder (security.W021) is silenced because leaving it off is the decision, not an oversight.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    # Health checks and metrics scrapes come from inside the network (load balancer, Prometheus),
    # often over plain HTTP: they are answered there rather than redirected.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
if env_bool("HOTLINE_BEHIND_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("nl", _("Dutch"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Europe/Amsterdam"
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("HOTLINE_STATIC_ROOT", BASE_DIR / "staticfiles"))
# In production, `collectstatic` writes hashed, compressed copies that WhiteNoise serves with
# far-future caching; in development and tests the files are served as they are from static/.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Development and tests: WhiteNoise finds files in static/ on each request (no collectstatic needed).
WHITENOISE_AUTOREFRESH = DEBUG or TESTING
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# --- Logging --------------------------------------------------------------------------------
# HOTLINE_LOG_FORMAT=json: one JSON object per line (for a log shipper); "text" (the default) for people.
# Every record carries the request id (reports.middleware.RequestIdMiddleware), tasks' records too.
# What is logged never includes reported URLs' query strings, e-mail addresses, tokens or PINs:
# Django logs paths only, gunicorn's access log is configured without the query string
# (hotline/gunicorn.conf.py), and Hotline's own log lines name ids, not data.
HOTLINE_LOG_FORMAT = os.environ.get("HOTLINE_LOG_FORMAT", "text").strip().lower()
if HOTLINE_LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured("HOTLINE_LOG_FORMAT must be 'text' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "reports.lib.logcontext.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "reports.lib.logcontext.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": HOTLINE_LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Django attaches its own console handler in DEBUG; route through the root one only, once.
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # Failed logins and lockouts are warnings; axes' info lines (start-up, clean-ups) are noise.
        "axes": {"level": "WARNING"},
    },
}

# --- Hotline --------------------------------------------------------------------------------


def _derived_fernet_key(label: str) -> str:
    digest = hashlib.sha256(f"{label}:{SECRET_KEY}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


# Fernet keys for encrypted fields (reporter e-mail), newest first: add a new key in front to
# rotate, keep the old ones until `manage.py rotate_field_keys` has re-encrypted every row.
HOTLINE_FIELD_KEYS = env_list("HOTLINE_FIELD_KEYS")
if not HOTLINE_FIELD_KEYS:
    if DEBUG or TESTING:
        HOTLINE_FIELD_KEYS = [_derived_fernet_key("hotline-field-key")]
    else:
        raise ImproperlyConfigured("HOTLINE_FIELD_KEYS must be set when DEBUG is off (Fernet keys, comma-separated).")

# Key for HMACs that must not be brute-forced offline: receipt PINs and rate-limit client keys.
HOTLINE_PEPPER = os.environ.get("HOTLINE_PEPPER", "") or hashlib.sha256(f"pepper:{SECRET_KEY}".encode()).hexdigest()

# host:port pairs that URL validation and (later) the fetcher may treat as public although
# they are private or loopback. Tests and the demo only; empty in production.
HOTLINE_FETCH_ALLOW_HOSTS = env_list("HOTLINE_FETCH_ALLOW_HOSTS")

HOTLINE_MAX_URLS_PER_REPORT = env_int("HOTLINE_MAX_URLS_PER_REPORT", 50)
HOTLINE_MAX_URL_LENGTH = env_int("HOTLINE_MAX_URL_LENGTH", 2048)
HOTLINE_MAX_DESCRIPTION_LENGTH = 2000
HOTLINE_MAX_FORM_BODY_BYTES = env_int("HOTLINE_MAX_FORM_BODY_BYTES", 512 * 1024)

# Per client (salted hash of the address), per hour.
HOTLINE_REPORT_RATE_LIMIT = env_int("HOTLINE_REPORT_RATE_LIMIT", 30)
HOTLINE_STATUS_RATE_LIMIT = env_int("HOTLINE_STATUS_RATE_LIMIT", 20)
# Wrong PINs for one receipt code per hour before that code is locked for the rest of the hour.
HOTLINE_STATUS_CODE_FAILURES = env_int("HOTLINE_STATUS_CODE_FAILURES", 5)
# Number of reverse proxies in front of the app whose X-Forwarded-For entries are trusted.
HOTLINE_TRUSTED_PROXY_COUNT = env_int("HOTLINE_TRUSTED_PROXY_COUNT", 0)

# --- Partner API ----------------------------------------------------------------------------
HOTLINE_API_MAX_BODY_BYTES = env_int("HOTLINE_API_MAX_BODY_BYTES", 10 * 1024 * 1024)
HOTLINE_API_MAX_HASHLIST_BODY_BYTES = env_int("HOTLINE_API_MAX_HASHLIST_BODY_BYTES", 16 * 1024 * 1024)
# Django's own cap on bodies read into memory; the middleware above applies the tighter limits.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(HOTLINE_API_MAX_BODY_BYTES, HOTLINE_API_MAX_HASHLIST_BODY_BYTES)
HOTLINE_API_MAX_BATCH = env_int("HOTLINE_API_MAX_BATCH", 1000)
HOTLINE_API_MAX_ITEMS_PER_REPORT = env_int("HOTLINE_API_MAX_ITEMS_PER_REPORT", 100)
HOTLINE_API_MAX_HASHLIST_ENTRIES = env_int("HOTLINE_API_MAX_HASHLIST_ENTRIES", 100_000)
# Requests per partner per minute; over it, 429 with Retry-After.
HOTLINE_API_RATE_LIMIT = env_int("HOTLINE_API_RATE_LIMIT", 600)
# Partner kinds that may read the outcome (referral result) of their reports.
HOTLINE_OUTCOME_VISIBLE_KINDS = env_list("HOTLINE_OUTCOME_VISIBLE_KINDS", ["hotline", "police"])

# --- Pipeline: fetch, hash, match -------------------------------------------------------------
HOTLINE_FETCH_MAX_BYTES = env_int("HOTLINE_FETCH_MAX_BYTES", 20 * 1024 * 1024)
HOTLINE_FETCH_CONNECT_TIMEOUT = float(os.environ.get("HOTLINE_FETCH_CONNECT_TIMEOUT", "5"))
HOTLINE_FETCH_READ_TIMEOUT = float(os.environ.get("HOTLINE_FETCH_READ_TIMEOUT", "10"))
HOTLINE_FETCH_TOTAL_TIMEOUT = float(os.environ.get("HOTLINE_FETCH_TOTAL_TIMEOUT", "30"))
HOTLINE_FETCH_MAX_REDIRECTS = env_int("HOTLINE_FETCH_MAX_REDIRECTS", 5)
HOTLINE_FETCH_MAX_IMAGES_PER_PAGE = env_int("HOTLINE_FETCH_MAX_IMAGES_PER_PAGE", 20)
# Wall-clock budget for one page and all the images it links to.
HOTLINE_FETCH_PAGE_BUDGET = float(os.environ.get("HOTLINE_FETCH_PAGE_BUDGET", "90"))
HOTLINE_FETCH_MAX_RETRIES = env_int("HOTLINE_FETCH_MAX_RETRIES", 5)
# Decoded images larger than this are refused as decompression bombs.
HOTLINE_MAX_IMAGE_PIXELS = env_int("HOTLINE_MAX_IMAGE_PIXELS", 50_000_000)
HOTLINE_PDQ_THRESHOLD = env_int("HOTLINE_PDQ_THRESHOLD", 31)
HOTLINE_PDQ_MIN_QUALITY = env_int("HOTLINE_PDQ_MIN_QUALITY", 50)
HOTLINE_PHASH_THRESHOLD = env_int("HOTLINE_PHASH_THRESHOLD", 8)
# A hash matching more distinct contents than this is "runaway": kept out of automatic decisions.
HOTLINE_RUNAWAY_THRESHOLD = env_int("HOTLINE_RUNAWAY_THRESHOLD", 50)
# Close a case unseen when every content is already assessed content: "exact" (the same file),
# "near" (also PDQ/pHash near-duplicates of assessed content) or "off".
HOTLINE_AUTO_CLOSE_KNOWN = os.environ.get("HOTLINE_AUTO_CLOSE_KNOWN", "exact")
# Fernet keys for preview encryption, newest first: to rotate, put a new key in front, run
# `manage.py rotate_preview_key` (re-encrypts every stored preview), then drop the old one.
HOTLINE_PREVIEW_KEYS = env_list("HOTLINE_PREVIEW_KEYS")
if not HOTLINE_PREVIEW_KEYS:
    if DEBUG or TESTING:
        HOTLINE_PREVIEW_KEYS = [_derived_fernet_key("hotline-preview-key")]
    else:
        raise ImproperlyConfigured("HOTLINE_PREVIEW_KEYS must be set when DEBUG is off (Fernet keys, comma-separated).")
# Load the near-duplicate index when a worker process starts (set it for workers of the match queue).
HOTLINE_WARM_MATCH_INDEX = env_bool("HOTLINE_WARM_MATCH_INDEX")
# URLs fetched by one task and recorded in one transaction (a report's URLs, a partner batch in slices).
HOTLINE_FETCH_BATCH_SIZE = env_int("HOTLINE_FETCH_BATCH_SIZE", 8)
# Fetch results are committed without waiting for the disk (PostgreSQL asynchronous commit, for that
# transaction only): a crash loses at most the last ~0.6 s of them, which the sweeper fetches again.
# See reports.services.fetching._commit_without_waiting_for_disk for why nothing else does this.
HOTLINE_FETCH_ASYNC_COMMIT = env_bool("HOTLINE_FETCH_ASYNC_COMMIT", True)
# Matching runs in batches: a batch is queued this many seconds after the first content that needs it,
# and collects every content fetched meanwhile (at most HOTLINE_MATCH_BATCH_SIZE; more make another).
HOTLINE_MATCH_BATCH_DELAY = float(os.environ.get("HOTLINE_MATCH_BATCH_DELAY", "0.5"))
HOTLINE_MATCH_BATCH_SIZE = env_int("HOTLINE_MATCH_BATCH_SIZE", 200)
# How long a URL may stay pending, or content unmatched, before the sweeper queues it again.
HOTLINE_SWEEP_AFTER_SECONDS = env_int("HOTLINE_SWEEP_AFTER_SECONDS", 600)

# Queue pipeline work when reports arrive. Tests and intake benchmarks switch it off to measure
# or exercise intake alone; the sweeper catches up on whatever was left pending.
HOTLINE_ENQUEUE_TASKS = env_bool("HOTLINE_ENQUEUE_TASKS", True)

# --- Analyst workspace (see docs/analyst.md) -------------------------------------------------
# How long a claim on a case holds; every assessment renews it. An analyst who walks away frees the
# case when it runs out: it is then claimable by anyone.
HOTLINE_CLAIM_MINUTES = env_int("HOTLINE_CLAIM_MINUTES", 30)
# How long a revealed image stays unblurred on screen before it is blurred again.
HOTLINE_REVEAL_SECONDS = env_int("HOTLINE_REVEAL_SECONDS", 10)
# How long the single-use token of a reveal may wait before the browser fetches the image with it.
HOTLINE_REVEAL_TOKEN_SECONDS = env_int("HOTLINE_REVEAL_TOKEN_SECONDS", 30)
# Reveals per analyst per day from which the pages suggest a break (a soft limit: it never blocks).
HOTLINE_REVEAL_SOFT_LIMIT = env_int("HOTLINE_REVEAL_SOFT_LIMIT", 50)
# Four eyes: an assessment of first-seen content waits for a senior analyst's second opinion.
HOTLINE_SECOND_OPINION_FIRST_SEEN = env_bool("HOTLINE_SECOND_OPINION_FIRST_SEEN", True)

# --- Referrals and takedown tracking (see docs/referrals.md) ---------------------------------
# The hotline's own country (ISO 3166-1 alpha-2): content hosted here goes to the police and the host.
HOTLINE_COUNTRY = os.environ.get("HOTLINE_COUNTRY", "NL").upper()
# MaxMind-format (GeoLite2/GeoIP2) databases for the hosting lookup; optional. Without them the
# hosting fields stay empty and the analyst fills them in on the case page.
HOTLINE_GEOIP_COUNTRY_DB = os.environ.get("HOTLINE_GEOIP_COUNTRY_DB", "")
HOTLINE_GEOIP_ASN_DB = os.environ.get("HOTLINE_GEOIP_ASN_DB", "")
# The hotline's name and reply address in notices (DEFAULT_FROM_EMAIL sends them).
HOTLINE_NAME = os.environ.get("HOTLINE_NAME", "Hotline")
HOTLINE_NOTICE_REPLY_TO = os.environ.get("HOTLINE_NOTICE_REPLY_TO", "")
# Who the police package is for (a label in the package and on the referral).
HOTLINE_POLICE_RECIPIENT = os.environ.get("HOTLINE_POLICE_RECIPIENT", "Police")
# Notices go out only in working hours (SCART): weekdays (0 = Monday) from start to end hour, local time
# (TIME_ZONE). Outside the window they wait for the next run inside it.
HOTLINE_NOTICE_HOURS = (env_int("HOTLINE_NOTICE_HOUR_START", 9), env_int("HOTLINE_NOTICE_HOUR_END", 17))
HOTLINE_NOTICE_WEEKDAYS = [int(day) for day in env_list("HOTLINE_NOTICE_WEEKDAYS", ["0", "1", "2", "3", "4"])]
# Re-checks of an open notice's URLs: every FIRST minutes for the first FIRST_PERIOD hours after it was
# sent, then every LATER hours, until the content is gone or the referral is closed.
HOTLINE_RECHECK_FIRST_MINUTES = env_int("HOTLINE_RECHECK_FIRST_MINUTES", 60)
HOTLINE_RECHECK_FIRST_PERIOD_HOURS = env_int("HOTLINE_RECHECK_FIRST_PERIOD_HOURS", 24)
HOTLINE_RECHECK_LATER_HOURS = env_int("HOTLINE_RECHECK_LATER_HOURS", 24)
# Escalation of a notice still online (SCART's defaults): a reminder after 1x, the site owner after 3x,
# the registrar after 6x the interval.
HOTLINE_ESCALATION_INTERVAL_HOURS = env_int("HOTLINE_ESCALATION_INTERVAL_HOURS", 24)
HOTLINE_ESCALATION_REMINDER_AFTER = env_int("HOTLINE_ESCALATION_REMINDER_AFTER", 1)
HOTLINE_ESCALATION_SITE_OWNER_AFTER = env_int("HOTLINE_ESCALATION_SITE_OWNER_AFTER", 3)
HOTLINE_ESCALATION_REGISTRAR_AFTER = env_int("HOTLINE_ESCALATION_REGISTRAR_AFTER", 6)
# E-mail: the console in development; set EMAIL_BACKEND/EMAIL_HOST etc. in production.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "hotline@localhost")

CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 150)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 180)

# --- Operations (see docs/operations.md) ---------------------------------------------------------
# Retention: a content's encrypted preview is deleted this many days after the last of its cases
# closed (never while any of its cases is open); a reporter's e-mail address this many days after the
# report came in. Hashes, captures and their metadata are kept. `retention_purge` runs daily (beat)
# or as `manage.py run_periodic retention`.
HOTLINE_RETENTION_PREVIEW_DAYS = env_int("HOTLINE_RETENTION_PREVIEW_DAYS", 30)
HOTLINE_RETENTION_EMAIL_DAYS = env_int("HOTLINE_RETENTION_EMAIL_DAYS", 90)
HOTLINE_RETENTION_BATCH = env_int("HOTLINE_RETENTION_BATCH", 1000)
if HOTLINE_RETENTION_PREVIEW_DAYS < 0 or HOTLINE_RETENTION_EMAIL_DAYS < 0 or HOTLINE_RETENTION_BATCH < 1:
    raise ImproperlyConfigured("Retention days must be >= 0 and HOTLINE_RETENTION_BATCH >= 1.")
# Queues whose workers /healthz expects to have answered a heartbeat within HOTLINE_HEARTBEAT_MAX_AGE
# seconds (beat sends one to each queue every HOTLINE_HEARTBEAT_SECONDS).
HOTLINE_HEALTH_QUEUES = env_list("HOTLINE_HEALTH_QUEUES", ["default", "fetch", "match"])
HOTLINE_HEARTBEAT_SECONDS = env_int("HOTLINE_HEARTBEAT_SECONDS", 60)
HOTLINE_HEARTBEAT_MAX_AGE = env_int("HOTLINE_HEARTBEAT_MAX_AGE", 3 * HOTLINE_HEARTBEAT_SECONDS)
# /metrics answers a request carrying "Authorization: Bearer <HOTLINE_METRICS_TOKEN>", or coming from
# one of HOTLINE_METRICS_ALLOW_IPS (addresses or networks, the connecting peer's address). With
# neither set it answers nobody: volumes are sensitive too.
HOTLINE_METRICS_TOKEN = os.environ.get("HOTLINE_METRICS_TOKEN", "")
if HOTLINE_METRICS_TOKEN and len(HOTLINE_METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("HOTLINE_METRICS_TOKEN must be at least 24 characters (a random token).")
HOTLINE_METRICS_ALLOW_IPS = env_list("HOTLINE_METRICS_ALLOW_IPS")

CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "sweep-stuck-work": {
        "task": "reports.tasks.maintenance.sweep_stuck",
        "schedule": float(env_int("HOTLINE_SWEEP_INTERVAL_SECONDS", 300)),
    },
    "retention-purge": {"task": "reports.tasks.maintenance.retention", "schedule": 24 * 3600.0},
    # Referrals: notices due (only sent inside the working-hours window), re-checks due, escalations.
    "referrals-send-notices": {"task": "reports.tasks.referrals.send_notices", "schedule": 600.0},
    "referrals-recheck-due": {"task": "reports.tasks.referrals.recheck_due", "schedule": 300.0},
    "referrals-escalate": {"task": "reports.tasks.referrals.escalate_due", "schedule": 900.0},
}
for _queue in HOTLINE_HEALTH_QUEUES:
    # One heartbeat per queue, answered by whichever worker consumes it. A heartbeat nobody takes
    # expires instead of piling up behind a dead queue.
    CELERY_BEAT_SCHEDULE[f"heartbeat-{_queue}"] = {
        "task": "reports.tasks.maintenance.heartbeat",
        "schedule": float(HOTLINE_HEARTBEAT_SECONDS),
        "args": (_queue,),
        "options": {"queue": _queue, "expires": float(HOTLINE_HEARTBEAT_SECONDS)},
    }

# --- Statistics (see docs/statistics.md) ------------------------------------------------------
# The rollup tables are brought up to date by Celery beat this often; today's figures are always live.
HOTLINE_STATS_REFRESH_SECONDS = env_int("HOTLINE_STATS_REFRESH_SECONDS", 300)
# Each refresh re-reads rows stamped this long before its watermark: a transaction that committed
# late, with an earlier timestamp, is still counted.
HOTLINE_STATS_OVERLAP_SECONDS = env_int("HOTLINE_STATS_OVERLAP_SECONDS", 900)
# Today's figures are computed from the source tables, and reused for this many seconds (0: every view).
HOTLINE_STATS_LIVE_SECONDS = env_int("HOTLINE_STATS_LIVE_SECONDS", 60)
# The dashboard's default period, in days up to today.
HOTLINE_STATS_DEFAULT_DAYS = env_int("HOTLINE_STATS_DEFAULT_DAYS", 90)
CELERY_BEAT_SCHEDULE["refresh-statistics"] = {
    "task": "reports.tasks.stats.refresh_statistics",
    "schedule": float(HOTLINE_STATS_REFRESH_SECONDS),
}
