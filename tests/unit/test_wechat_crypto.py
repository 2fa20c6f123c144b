"""WeChat message crypto reproduces the published sample vectors and refuses anything that is not ours."""

from __future__ import annotations

import base64
import struct
from typing import Callable

import pytest
from wechatpy.crypto import PKCS7Encoder, PrpCrypto, WeChatCipher

from bot.wechat.crypto import BLOCK_SIZE, MessageCrypto, decode_aes_key, pkcs7_pad, pkcs7_unpad
from bot.wechat.errors import DecryptError, SignatureError
from bot.wechat.messages import TextMessage, parse_message
from bot.wechat.signature import signature, verify
from bot.wechat.xmlsafe import parse_xml

# Vector 1 — WeChat's official WXBizMsgCrypt sample for the Official Account platform (the Python
# Sample.py of the 消息加解密 sample code, the same values as its C++/Node ports): a text message
# "abcdteT" pushed in compatible mode.
OFFICIAL_TOKEN = "spamtest"
OFFICIAL_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OFFICIAL_APPID = "wx2c2769f8efd9abc2"
OFFICIAL_TIMESTAMP = "1409735669"
OFFICIAL_NONCE = "1320562132"
OFFICIAL_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
OFFICIAL_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrX"
    "pbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzj"
    "lpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1B"
    "D1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)
OFFICIAL_PLAINTEXT = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
    "<CreateTime>1409735668</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[abcdteT]]></Content>\n"
    "<MsgId>6054768590064713728</MsgId>\n"
    "</xml>"
)

# Vector 2 — the official Java sample's testAesEncrypt (WXBizMsgCryptTest): fixed random prefix.
JAVA_APPID = "wxb11529c136998cb6"
JAVA_RANDOM = b"aaaabbbbccccdddd"
JAVA_REPLY = "我是中文abcd123"
JAVA_ENCRYPT = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="

# Vector 3 — wechatpy's own tests/test_crypto.py (github.com/wechatpy/wechatpy): the same algorithm
# with its receiver id, one push to decrypt and one reply envelope encrypted with a fixed prefix.
WECHATPY_TOKEN = "123456"
WECHATPY_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
WECHATPY_APPID = "wx49f0ab532d5d035a"
WECHATPY_PUSH_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
WECHATPY_PUSH_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6"
    "ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/"
    "TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/"
    "5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
WECHATPY_TIMESTAMP = "1411525903"
WECHATPY_NONCE = "461056294"
WECHATPY_RANDOM = b"1234567890123456"
WECHATPY_REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
WECHATPY_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObves"
    "El5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsD"
    "f03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYj"
    "xxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
WECHATPY_REPLY_SIGNATURE = "407518b7649e86ef23978113f92d27afa9296533"


def _official() -> MessageCrypto:
    return MessageCrypto(OFFICIAL_TOKEN, OFFICIAL_AES_KEY, OFFICIAL_APPID)


def _fixed(prefix: bytes) -> Callable[[int], bytes]:
    return lambda n: prefix


def _raw_encrypt(plain: bytes, aes_key: str = OFFICIAL_AES_KEY) -> str:
    """Encrypt already-framed, already-padded bytes, to build ciphertexts our encrypt() would never make."""
    return base64.b64encode(WeChatCipher(decode_aes_key(aes_key)).encrypt(plain)).decode("ascii")


# --- known answers -------------------------------------------------------------------------------


def test_signature_of_the_official_sample_is_the_published_msg_signature() -> None:
    assert signature(OFFICIAL_TOKEN, OFFICIAL_TIMESTAMP, OFFICIAL_NONCE, OFFICIAL_ENCRYPT) == OFFICIAL_MSG_SIGNATURE
    assert verify(OFFICIAL_TOKEN, OFFICIAL_MSG_SIGNATURE, OFFICIAL_TIMESTAMP, OFFICIAL_NONCE, OFFICIAL_ENCRYPT)


def test_official_sample_decrypts_to_the_published_plaintext() -> None:
    plain = _official().decrypt_verified(OFFICIAL_MSG_SIGNATURE, OFFICIAL_TIMESTAMP, OFFICIAL_NONCE, OFFICIAL_ENCRYPT)
    assert plain == OFFICIAL_PLAINTEXT
    message = parse_message(parse_xml(plain.encode("utf-8")))
    assert message == TextMessage(to_user="gh_10f6c3c3ac5a", from_user="oyORnuP8q7ou2gfYjqLzSIWZf0rs",
                                  create_time=1409735668, msg_id="6054768590064713728", content="abcdteT")


def test_encryption_with_a_fixed_prefix_matches_the_official_java_vector() -> None:
    crypto = MessageCrypto("pamtest", OFFICIAL_AES_KEY, JAVA_APPID, random_bytes=_fixed(JAVA_RANDOM))
    assert crypto.encrypt(JAVA_REPLY) == JAVA_ENCRYPT
    assert crypto.decrypt(JAVA_ENCRYPT) == JAVA_REPLY


def test_wechatpy_sample_push_decrypts() -> None:
    crypto = MessageCrypto(WECHATPY_TOKEN, WECHATPY_AES_KEY, WECHATPY_APPID)
    plain = crypto.decrypt_verified(WECHATPY_PUSH_SIGNATURE, WECHATPY_TIMESTAMP, WECHATPY_NONCE, WECHATPY_PUSH_ENCRYPT)
    fields = parse_xml(plain.encode("utf-8"))
    assert (fields["Content"], fields["FromUserName"]) == ("test", "messense")


def test_reply_envelope_matches_the_wechatpy_vector() -> None:
    crypto = MessageCrypto(WECHATPY_TOKEN, WECHATPY_AES_KEY, WECHATPY_APPID, random_bytes=_fixed(WECHATPY_RANDOM))
    envelope = crypto.reply_envelope(WECHATPY_REPLY, WECHATPY_TIMESTAMP, WECHATPY_NONCE)
    assert parse_xml(envelope.encode("utf-8")) == {
        "Encrypt": WECHATPY_REPLY_ENCRYPT,
        "MsgSignature": WECHATPY_REPLY_SIGNATURE,
        "TimeStamp": WECHATPY_TIMESTAMP,
        "Nonce": WECHATPY_NONCE,
    }
    assert f"<TimeStamp>{WECHATPY_TIMESTAMP}</TimeStamp>" in envelope


# --- round trips and interoperability -------------------------------------------------------------


@pytest.mark.parametrize("length", range(0, 2 * BLOCK_SIZE + 2))
def test_every_message_length_round_trips(length: int) -> None:
    crypto = _official()
    xml = "x" * length  # with the 20-byte header and the appid this walks through every pad length
    assert crypto.decrypt(crypto.encrypt(xml)) == xml


def test_long_chinese_reply_round_trips_with_a_fresh_prefix_each_time() -> None:
    crypto = _official()
    xml = "<xml><Content><![CDATA[" + "您好，您的报修已受理。" * 400 + "]]></Content></xml>"
    first, second = crypto.encrypt(xml), crypto.encrypt(xml)
    assert first != second
    assert crypto.decrypt(first) == crypto.decrypt(second) == xml


def test_wechatpy_and_we_read_each_other() -> None:
    crypto = _official()
    theirs = PrpCrypto(decode_aes_key(OFFICIAL_AES_KEY))
    xml = "<xml><Content><![CDATA[水管漏水]]></Content></xml>"
    assert theirs.decrypt(crypto.encrypt(xml), OFFICIAL_APPID) == xml
    assert crypto.decrypt(theirs.encrypt(xml, OFFICIAL_APPID).decode("ascii")) == xml


def test_reply_envelope_verifies_and_decrypts_back() -> None:
    crypto = _official()
    reply = "<xml><Content><![CDATA[已收到]]></Content></xml>"
    fields = parse_xml(crypto.reply_envelope(reply, "1700000000", "98765").encode("utf-8"))
    assert set(fields) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert verify(OFFICIAL_TOKEN, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
    assert crypto.decrypt_verified(fields["MsgSignature"], "1700000000", "98765", fields["Encrypt"]) == reply


# --- PKCS#7 with 32-byte blocks -------------------------------------------------------------------


def test_padding_covers_every_pad_length_from_1_to_32() -> None:
    seen = set()
    for length in range(0, 2 * BLOCK_SIZE + 1):
        data = b"\xab" * length
        padded = pkcs7_pad(data)
        count = padded[-1]
        assert len(padded) % BLOCK_SIZE == 0
        assert 1 <= count <= BLOCK_SIZE and padded[-count:] == bytes([count]) * count
        assert padded == PKCS7Encoder.encode(data)  # the same bytes wechatpy produces
        assert pkcs7_unpad(padded) == data
        seen.add(count)
    assert seen == set(range(1, BLOCK_SIZE + 1))


@pytest.mark.parametrize("pad", range(1, BLOCK_SIZE + 1))
def test_each_valid_pad_value_is_removed_exactly(pad: int) -> None:
    block = b"m" * (BLOCK_SIZE - pad) + bytes([pad]) * pad
    assert pkcs7_unpad(block) == b"m" * (BLOCK_SIZE - pad)


@pytest.mark.parametrize(
    "block",
    [
        b"m" * 31 + b"\x00",                      # pad value 0
        b"m" * 31 + bytes([33]),                  # pad value above the 32-byte block
        b"m" * 31 + b"\xff",
        b"m" * 29 + b"\x02\x03\x03",              # says 3, only two bytes agree
        b"m" * 16 + bytes([16]) * 15 + b"\x11",   # 16-byte style padding mixed up with 32
        b"\x20" * 31 + b"\x1f",
    ],
)
def test_invalid_padding_is_refused(block: bytes) -> None:
    with pytest.raises(DecryptError):
        pkcs7_unpad(block)


@pytest.mark.parametrize("data", [b"", b"m" * 31, b"m" * 33])
def test_padded_data_must_be_whole_blocks(data: bytes) -> None:
    with pytest.raises(DecryptError):
        pkcs7_unpad(data)


@pytest.mark.parametrize("last", [0, 33, 200])
def test_ciphertext_with_an_out_of_range_pad_is_refused_where_wechatpy_would_guess(last: int) -> None:
    body = b"<xml/>"
    frame = b"r" * 16 + struct.pack(">I", len(body)) + body + OFFICIAL_APPID.encode()
    plain = frame + b"\x00" * (BLOCK_SIZE - 1 - len(frame) % BLOCK_SIZE) + bytes([last])
    with pytest.raises(DecryptError, match="padding"):
        _official().decrypt(_raw_encrypt(plain))


# --- refusals -------------------------------------------------------------------------------------


def test_message_for_another_appid_is_refused() -> None:
    other = MessageCrypto(OFFICIAL_TOKEN, OFFICIAL_AES_KEY, "wx0000000000000000")
    with pytest.raises(DecryptError, match="appid"):
        _official().decrypt(other.encrypt("<xml/>"))


def test_official_sample_is_refused_under_another_appid() -> None:
    with pytest.raises(DecryptError, match="appid"):
        MessageCrypto(OFFICIAL_TOKEN, OFFICIAL_AES_KEY, "wxb11529c136998cb6").decrypt(OFFICIAL_ENCRYPT)


@pytest.mark.parametrize("position", ["first byte", "end of the second-to-last block"])
def test_tampered_ciphertext_is_refused(position: str) -> None:
    raw = bytearray(base64.b64decode(OFFICIAL_ENCRYPT))
    # First byte: CBC flips the top byte of the length field. Byte -17: garbles the appid block and
    # flips the last pad byte. Either way decryption must fail instead of returning garbage.
    raw[0 if position == "first byte" else -17] ^= 0x01
    tampered = base64.b64encode(bytes(raw)).decode("ascii")
    with pytest.raises(DecryptError):
        _official().decrypt(tampered)
    with pytest.raises(SignatureError):
        _official().decrypt_verified(OFFICIAL_MSG_SIGNATURE, OFFICIAL_TIMESTAMP, OFFICIAL_NONCE, tampered)


def test_length_field_beyond_the_plaintext_is_refused() -> None:
    frame = b"r" * 16 + struct.pack(">I", 1000) + b"<xml/>" + OFFICIAL_APPID.encode()
    with pytest.raises(DecryptError, match="length"):
        _official().decrypt(_raw_encrypt(pkcs7_pad(frame)))


@pytest.mark.parametrize(
    "value",
    ["", "not base64!", "YWJj", base64.b64encode(b"x" * 16).decode(), base64.b64encode(b"x" * 48).decode(), "密文"],
)
def test_garbage_encrypt_values_are_refused(value: str) -> None:
    with pytest.raises(DecryptError):
        _official().decrypt(value)


def test_wrong_msg_signature_is_refused_before_decrypting() -> None:
    with pytest.raises(SignatureError):
        _official().decrypt_verified("0" * 40, OFFICIAL_TIMESTAMP, OFFICIAL_NONCE, OFFICIAL_ENCRYPT)


@pytest.mark.parametrize("key", ["", "short", OFFICIAL_AES_KEY + "A", OFFICIAL_AES_KEY[:-1] + "!"])
def test_an_invalid_encoding_aes_key_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ValueError):
        MessageCrypto(OFFICIAL_TOKEN, key, OFFICIAL_APPID)


def test_repr_shows_no_key_or_token() -> None:
    text = repr(_official())
    assert OFFICIAL_AES_KEY not in text and OFFICIAL_TOKEN not in text
