"""The EM engine: the EM map and the transforms the driver composes (chunked, sharded,
SQUAREM, implicit gradients), the ``lax.while_loop`` driver (:func:`emjax.em`) and the
restarts (:func:`emjax.fit`). Imports only :mod:`emjax.core`; never a model."""
