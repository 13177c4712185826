from gsasrec.cli import entry

entry()
