#!/bin/bash
# healthy when the broker answers ApiVersions on the port of its first advertised listener
l=$(sed -n 's/^advertised.listeners=//p' /opt/kafka/config/server.properties | cut -d, -f1)
hp=${l#*://}
exec /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server "${hp/0.0.0.0/127.0.0.1}" >/dev/null 2>&1
