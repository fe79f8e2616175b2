"""One module per export kind; each renders a source video into an output file."""
