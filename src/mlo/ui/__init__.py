"""The web UI outside JupyterLab: the REST API's framework-free core (:mod:`mlo.ui.api`), the standalone
``mlo ui`` server (:mod:`mlo.ui.server`) and the static export (:mod:`mlo.ui.export`)."""
