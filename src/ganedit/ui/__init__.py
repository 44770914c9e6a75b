"""`ganedit ui`: a local web editor over the editing service (`ganedit.editing.service`).

Needs the `ui` extra (`pip install 'ganedit[ui]'`: fastapi, uvicorn, python-multipart); the
rest of ganedit never imports it. See docs/ui.md.
"""
