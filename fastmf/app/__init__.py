"""What people drive fastmf with: the service layer (:mod:`~fastmf.app.service`: plain functions that
return data and raise typed errors, never print) and the command line on top of it
(:mod:`~fastmf.app.cli`: parses arguments, calls the service, prints)."""
