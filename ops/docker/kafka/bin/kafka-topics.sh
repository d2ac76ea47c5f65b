#!/bin/bash
exec java -Xmx128m -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -Dkafka.logs.dir=/tmp/kafka-logs \
  -cp '/opt/kafka/libs/*' org.apache.kafka.tools.TopicCommand "$@"
