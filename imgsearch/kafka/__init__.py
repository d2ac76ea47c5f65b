"""Plain aiokafka helpers of the core (no faust): topic creation (``admin``), client deadlines and
errors (``deadlines``), the compacted model topics read and written as latest values (``model_topics``)."""
