"""The sections of Qiao's settings table; :mod:`qiao.config` puts them
together. One module a section, each a tuple ``SETTINGS`` of
:class:`~qiao.settings.base.Setting`."""
