# Hotline's one image: web (gunicorn), Celery workers and beat all run it (docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt ./
RUN python -m pip install -r requirements.txt

COPY . .
# Hashed, compressed static files for WhiteNoise. collectstatic needs settings to load; the keys here are
# throwaway values used for nothing else (the real ones come from the environment at run time).
RUN key=$(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())") \
    && SECRET_KEY=collectstatic-only HOTLINE_FIELD_KEYS=$key HOTLINE_PREVIEW_KEYS=$key \
       HOTLINE_STATIC_ROOT=/app/staticfiles python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --home-dir /app hotline \
    && mkdir -p /var/lib/hotline /run/hotline-metrics && chown hotline /var/lib/hotline /run/hotline-metrics

USER hotline
ENV HOTLINE_STATIC_ROOT=/app/staticfiles GUNICORN_BIND=0.0.0.0:8000
EXPOSE 8000
CMD ["gunicorn", "-c", "hotline/gunicorn.conf.py", "hotline.wsgi"]
