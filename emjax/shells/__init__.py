"""User-facing shells: the command line, the demo, plotting and the bundled data sets
(host-side, NumPy in and out). :mod:`emjax.sklearn` is a shell too; it stays at the top
because users import it by that name."""
