"""`radlab serve`: an HTTP inference service over trained runs (the contract is shared/spec/serve.md).

`spec` is what a task gives (how its uploads are checked and predicted), `staging` puts a request's files
on disk, `batcher` groups concurrent requests into one predict call, `models` loads the runs through each
Task's `load` door, `app` is the FastAPI application and `server` runs it under uvicorn.
"""
