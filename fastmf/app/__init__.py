"""What people drive fastmf with: the command line (:mod:`~fastmf.app.cli`)."""
