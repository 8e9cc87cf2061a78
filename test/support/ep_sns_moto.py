#!/usr/bin/env python3
"""SNS/SQS client for the tests (test/support/ep_sns.erl runs it as a port).

Reads requests and writes replies as JSON, each framed by a 4-byte big-endian
length ({packet, 4} on the Erlang side). A request is {"op": Name, ...args};
a reply is {"ok": Result} or {"error": Text}. Talks to moto at the endpoint
given as the first argument, with the region and dummy credentials moto
accepts (it checks no signature).
"""
import base64
import json
import struct
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3

REGION = "us-east-1"


def client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="ep-test", aws_secret_access_key="ep-test")


class Moto:
    def __init__(self, endpoint):
        self.sns = client("sns", endpoint)
        self.sqs = client("sqs", endpoint)

    def create_topic(self, name):
        # A name ending in .fifo is a FIFO topic (with a FIFO queue).
        attrs = {"FifoTopic": "true"} if name.endswith(".fifo") else {}
        return self.sns.create_topic(Name=name, Attributes=attrs)["TopicArn"]

    def create_queue(self, name):
        attrs = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
        url = self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"url": url, "arn": arn}

    def subscribe_queue(self, topic_arn, queue_arn, raw, filter_policy=None):
        attrs = {"RawMessageDelivery": "true" if raw else "false"}
        if filter_policy is not None:
            attrs["FilterPolicyScope"] = "MessageBody"
            attrs["FilterPolicy"] = json.dumps(filter_policy)
        return self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                                  Attributes=attrs, ReturnSubscriptionArn=True)["SubscriptionArn"]

    def topic_with_queue(self, name, raw=True, shard_by=None):
        """A topic and a queue of the same name, the queue subscribed to it
        (once: creating what exists already changes nothing).

        With shard_by (a field of the JSON message body holding a decimal
        number), ten queues instead, <name>-0 .. <name>-9, queue D subscribed
        with a filter policy taking the messages whose number ends in D. Why:
        moto 5.2.1 counts a queue's messages on every send and three times
        for every message received, so one queue holding thousands makes
        each call slower (quadratic overall); ten short queues, read in
        parallel, keep every call quick."""
        topic_arn = self.create_topic(name)
        if shard_by is None:
            shards = [(name, None)]
        else:
            stem, fifo = (name[:-5], ".fifo") if name.endswith(".fifo") else (name, "")
            shards = [(f"{stem}-{d}{fifo}", {shard_by: [{"suffix": str(d)}]}) for d in range(10)]
        subscribed = {s["Endpoint"]
                      for s in self.sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]}
        urls = []
        for queue_name, policy in shards:
            queue = self.create_queue(queue_name)
            if queue["arn"] not in subscribed:
                self.subscribe_queue(topic_arn, queue["arn"], raw, policy)
            urls.append(queue["url"])
        return {"topic_arn": topic_arn, "queue_urls": urls}

    def receive_messages(self, queue_urls, max_messages=10):
        """Messages now in the queues (up to max_messages in all, shared
        evenly), deleted once read; the queues are read in parallel. The
        bound keeps a call short while a publisher keeps the queues filling."""
        each = max(10, max_messages // len(queue_urls))
        with ThreadPoolExecutor(max_workers=len(queue_urls)) as pool:
            per_queue = pool.map(lambda url: self.receive_from(url, each), queue_urls)
            return [m for got in per_queue for m in got]

    def receive_from(self, queue_url, max_messages):
        """One queue's messages. A FIFO queue's also carry SQS's own
        attributes (MessageGroupId, MessageDeduplicationId, ...) as "system"."""
        fifo = queue_url.endswith(".fifo")
        extra = {"AttributeNames": ["All"]} if fifo else {}
        got = []
        while len(got) < max_messages:
            resp = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=min(10, max_messages - len(got)),
                WaitTimeSeconds=0, MessageAttributeNames=["All"], **extra)
            msgs = resp.get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                message = {"body": m["Body"], "attributes": attributes(m)}
                if fifo:
                    message["system"] = m.get("Attributes", {})
                got.append(message)
            self.sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                         for i, m in enumerate(msgs)])
        return got

    def delete_topic_with_queues(self, topic_arn, queue_urls):
        self.sns.delete_topic(TopicArn=topic_arn)
        for url in queue_urls:
            self.sqs.delete_queue(QueueUrl=url)
        return True


def attributes(message):
    """SQS message attributes as {Name: {"type", "value"}}; a Binary value is
    given base64-encoded (JSON has no bytes)."""
    out = {}
    for name, attr in message.get("MessageAttributes", {}).items():
        if "BinaryValue" in attr:
            value = base64.b64encode(attr["BinaryValue"]).decode()
        else:
            value = attr.get("StringValue")
        out[name] = {"type": attr["DataType"], "value": value}
    return out


def read_exact(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main():
    moto = Moto(sys.argv[1])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = read_exact(stdin, 4)
        if header is None:
            return  # the port was closed
        request = json.loads(read_exact(stdin, struct.unpack(">I", header)[0]))
        op = request.pop("op")
        try:
            reply = {"ok": getattr(moto, op)(**request)}
        except Exception as e:  # reported to the test, which fails with it
            reply = {"error": f"{type(e).__name__}: {e}"}
        data = json.dumps(reply).encode()
        stdout.write(struct.pack(">I", len(data)) + data)
        stdout.flush()


if __name__ == "__main__":
    main()
