# One image for the web app and the workers (the CUDA build of torch runs on CPU hosts as well).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# Installed as a wheel is (`pip install .`, not editable; pip compiles it), and the sources removed: the image
# runs what site-packages holds, the dashboard's router and the migrations included.
RUN pip install --no-deps . && cd / && rm -rf /src
ENV SKIPWEB_DATA_DIR=/data
# workers and the web app run as an unprivileged user: a process that trains on shared data needs no root
RUN useradd --create-home --uid 1000 skipweb && mkdir -p /data /app && chown skipweb /data /app
WORKDIR /app
USER skipweb
EXPOSE 8501
CMD ["skipweb", "up", "--no-worker", "--host", "0.0.0.0"]
