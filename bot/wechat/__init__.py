"""WeChat Official Account protocol: signatures, message crypto, safe XML, typed messages, the API client.

Also the Rasa-free parts of the input channel: the envelope of a push (`envelope`), what each push asks
for (`inbound`), replies as WeChat text (`render`), numbered options (`options`), retry detection
(`dedupe`), the 5-second decision (`responder`), customer-service delivery (`delivery`) and the
per-process resources (`runtime`). Nothing here knows about Rasa; `bot.channels.wechat` glues it in.
"""
