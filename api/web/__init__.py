"""The therapist web view: server-rendered, read-only pages under ``/therapist/``.

Sign-in makes a server-side session (``sessions``); a patient's page reads through the API's own
gate and scoped queries (``patient_page``); templates escape everything and the pages carry a
strict Content-Security-Policy (``rendering``). No JavaScript anywhere.
"""
