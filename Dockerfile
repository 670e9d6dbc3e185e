# One image for the web app and the workers (the CUDA build of torch runs on CPU hosts as well).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN pip install --no-deps -e . && python -m compileall -q skipweb db workers
ENV SKIPWEB_DATA_DIR=/data
# workers and the web app run as an unprivileged user: a process that trains on shared data needs no root
RUN useradd --create-home --uid 1000 skipweb && mkdir -p /data && chown skipweb /data
USER skipweb
EXPOSE 8501
CMD ["skipweb", "up", "--no-worker", "--host", "0.0.0.0"]
