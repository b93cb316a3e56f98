"""Routes that speak other services' image APIs (AUTOMATIC1111's ``/sdapi/v1``, OpenAI's ``/v1``).

Each is a thin translation onto the native job path: a request becomes the body of
``POST /api/jobs``, is validated, admitted and queued by the same code, and waits as
``POST /generate`` does.  No second code path runs a pipeline.
"""
