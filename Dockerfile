FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY services ./services
RUN pip install --no-cache-dir ".[otlp]"
USER nobody
CMD ["sharinghub", "--help"]
