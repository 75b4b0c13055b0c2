# tiktok-ads-api for Cloud Run: gunicorn serving main:app (settings in gunicorn.conf.py).

# The native page reader (controller/tiktok/native), compiled where a compiler is: the full image of
# the same Python and Debian release as the runtime below, which has none.
FROM python:3.12 AS native
WORKDIR /src
COPY controller/tiktok/native/build.py controller/tiktok/native/tiktok_rows.c controller/tiktok/native/
RUN python controller/tiktok/native/build.py

FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080

WORKDIR /app
RUN useradd --create-home --uid 10001 app

# Dependencies first: this layer is reused until requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY config/ config/
COPY controller/ controller/
COPY --from=native /src/controller/tiktok/native/libtiktok_rows.so controller/tiktok/native/
COPY database/ database/
COPY main.py __main__.py gunicorn.conf.py ./

USER 10001
EXPOSE 8080
CMD ["gunicorn", "--config", "gunicorn.conf.py", "main:app"]
