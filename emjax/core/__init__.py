"""The bottom layer: the model contract (:mod:`.model`), statuses, tree and linear-algebra
helpers, input checks, chunked sums and the execution plan. Imports nothing else from emjax."""
