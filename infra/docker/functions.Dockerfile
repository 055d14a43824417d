# Order Service (Azure Functions, Python 3.11) for the local compose stack.
# Build context: repository root (docker-compose.yml sets it).
FROM mcr.microsoft.com/azure-functions/python:4-python3.11

ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first so code edits don't reinstall them.
COPY requirements.txt /home/site/wwwroot/requirements.txt
RUN pip install -r /home/site/wwwroot/requirements.txt

# function_app.py + host.json at the app root, plus the packages it imports (.dockerignore trims the rest).
COPY . /home/site/wwwroot

EXPOSE 80
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=12 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:80/api/health', timeout=5).status == 200 else 1)"
