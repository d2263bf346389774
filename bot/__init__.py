"""arbwatch bot: settings, command line and (later) the chat frontends around the detector."""
