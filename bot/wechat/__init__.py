"""WeChat Official Account protocol: signatures, message crypto, safe XML, typed messages, the API client.

Nothing here knows about Rasa; the input channel is built on top of these modules.
"""
