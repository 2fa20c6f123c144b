"""WeChat message encryption (WXBizMsgCrypt): AES-256-CBC with 32-byte PKCS#7 blocks and an appid trailer.

Plaintext layout: 16 random bytes, 4-byte big-endian XML length, the XML, the appid. The AES itself is
wechatpy's cipher; framing and padding are checked strictly here because wechatpy's own unpadding
accepts any pad value. CBC has no integrity: verify `msg_signature` (see `decrypt_verified`) before trusting a
decrypted message.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import struct
from typing import Callable, Union

from wechatpy.crypto import WeChatCipher

from bot.wechat.errors import DecryptError, SignatureError
from bot.wechat.signature import signature, verify
from bot.wechat.xmlsafe import to_xml

__all__ = ["BLOCK_SIZE", "MessageCrypto", "decode_aes_key", "pkcs7_pad", "pkcs7_unpad"]

BLOCK_SIZE = 32  # WeChat pads to 32 bytes, not AES's 16
_RANDOM_LEN = 16
_LENGTH = struct.Struct(">I")


def pkcs7_pad(data: bytes, block: int = BLOCK_SIZE) -> bytes:
    """`data` padded with n bytes of value n (1..block), so the result is a whole number of blocks."""
    if not 1 <= block <= 255:
        raise ValueError("block must be 1..255")
    count = block - len(data) % block
    return data + bytes([count]) * count


def pkcs7_unpad(data: bytes, block: int = BLOCK_SIZE) -> bytes:
    """`data` without its padding; DecryptError unless the padding is exactly n bytes of value n (1..block)."""
    if not data or len(data) % block:
        raise DecryptError("padded length is not a whole number of blocks")
    count = data[-1]
    if not 1 <= count <= block:
        raise DecryptError("padding value out of range")
    if not hmac.compare_digest(data[-count:], bytes([count]) * count):
        raise DecryptError("inconsistent padding bytes")
    return data[:-count]


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key behind a 43-character EncodingAESKey."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(encoding_aes_key) != 43 or len(key) != 32:
        raise ValueError("EncodingAESKey must be 43 base64 characters (32 bytes)")
    return key


class MessageCrypto:
    """Encrypts replies and decrypts pushes for one Official Account (token, EncodingAESKey, appid)."""

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        appid: str,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not token or not appid:
            raise ValueError("token and appid are required")
        self._token = token
        self._appid = appid.encode("utf-8")
        self._random_bytes = random_bytes
        key = decode_aes_key(encoding_aes_key)
        # wechatpy's cipher: AES-256-CBC with IV = the first 16 bytes of the key, no padding of its own.
        self._cipher = WeChatCipher(key)

    def __repr__(self) -> str:
        return f"MessageCrypto(appid={self._appid.decode('utf-8')!r})"

    def encrypt(self, xml: str) -> str:
        """The base64 `Encrypt` value carrying `xml` for this account."""
        body = xml.encode("utf-8")
        prefix = self._random_bytes(_RANDOM_LEN)
        if len(prefix) != _RANDOM_LEN:
            raise ValueError("random_bytes must return 16 bytes")
        plain = pkcs7_pad(prefix + _LENGTH.pack(len(body)) + body + self._appid)
        return base64.b64encode(self._cipher.encrypt(plain)).decode("ascii")

    def decrypt(self, encrypt_b64: str) -> str:
        """The XML inside an `Encrypt` value; DecryptError for bad base64, padding, length or appid."""
        try:
            raw = base64.b64decode(encrypt_b64, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptError("not base64") from None
        if not raw or len(raw) % BLOCK_SIZE:
            raise DecryptError("ciphertext is not a whole number of 32-byte blocks")
        try:
            plain = self._cipher.decrypt(raw)
        except ValueError:
            raise DecryptError("AES rejected the ciphertext") from None
        content = pkcs7_unpad(plain)
        if len(content) < _RANDOM_LEN + _LENGTH.size:
            raise DecryptError("plaintext too short")
        (length,) = _LENGTH.unpack_from(content, _RANDOM_LEN)
        start = _RANDOM_LEN + _LENGTH.size
        if start + length > len(content):
            raise DecryptError("length field larger than the plaintext")
        appid = content[start + length:]
        if not hmac.compare_digest(appid, self._appid):
            raise DecryptError("appid mismatch")
        try:
            return content[start:start + length].decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptError("message is not UTF-8") from None

    def decrypt_verified(self, msg_signature: str, timestamp: str, nonce: str, encrypt_b64: str) -> str:
        """Check `msg_signature` over [token, timestamp, nonce, Encrypt], then decrypt; SignatureError first."""
        if not verify(self._token, msg_signature, timestamp, nonce, encrypt_b64):
            raise SignatureError("msg_signature does not match")
        return self.decrypt(encrypt_b64)

    def reply_envelope(self, xml: str, timestamp: Union[str, int], nonce: str) -> str:
        """The encrypted passive reply: `<xml>` with Encrypt, MsgSignature, TimeStamp and Nonce."""
        stamp = str(timestamp)
        encrypt = self.encrypt(xml)
        msg_signature = signature(self._token, stamp, nonce, encrypt)
        bare = stamp.isascii() and stamp.isdecimal() and str(int(stamp)) == stamp
        return to_xml({
            "Encrypt": encrypt,
            "MsgSignature": msg_signature,
            "TimeStamp": int(stamp) if bare else stamp,
            "Nonce": nonce,
        })
