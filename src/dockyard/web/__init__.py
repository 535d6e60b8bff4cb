"""The serve process's webserver: probes, metrics, the HTTP API (FastAPI + uvicorn)."""
