"""Personal data in residents' messages, masked before anything leaves the database (transcript exports, review
pages, reports): phone numbers, ID-card numbers, licence plates and people's names.

Masking keeps what an admin needs to label a message (estate, building, unit and room numbers, ticket numbers,
facility words) and replaces each personal item by a placeholder of its kind, so that "我叫王建国，电话13812345678"
becomes "我叫[姓名]，电话[电话]". Names are found three ways: names the caller knows (residents' and staff's, from the
database), a surname after a self-introduction or a contact cue ("我叫…", "联系人…", "姓王"), and a surname with a
form of address ("王阿姨", "李师傅", "老张"). A masker errs towards masking: a false mask costs an admin a word, a
missed one leaks a resident's data.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

__all__ = ["ID_CARD", "NAME", "PHONE", "PLATE", "Masker", "mask"]

PHONE, ID_CARD, PLATE, NAME = "[电话]", "[身份证]", "[车牌]", "[姓名]"

# Common surnames (single and double); a name is a surname and one or two more characters.
_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
             "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤"
             "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
             "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄"
             "窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池"
             "查麻苑迟邝")
_DOUBLE_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "令狐")
_SURNAME = "(?:" + "|".join(_DOUBLE_SURNAMES) + f"|[{_SURNAMES}])"
_HAN = "[\u4e00-\u9fff]"
# Words that begin with a surname's character but are no name (after "我是": 我是高龄老人, 我是房东, 我是吉利花园的).
_NOT_NAMES = ("高龄", "房东", "房主", "单亲", "党员", "成员", "全体", "全家", "明天", "时间", "金穗", "吉利", "安排", "路过",
              "华为", "商户", "车主", "常住", "文明", "应该", "连续", "管家", "万一", "曾经", "任何", "周围", "周边", "陆续")
# Cues after which a name follows: a self-introduction or a contact.
_CUE = re.compile(
    r"(?:我叫|我的名字(?:是|叫)|名字(?:是|叫)|本人(?:是|叫)|我是|叫我|联系人(?:是|为)?|姓名(?:是|为)?|户主(?:是|为)?)"
    r"\s*[:：]?\s*(" + _SURNAME + _HAN + r"{1,2})"
)
_SURNAME_ONLY = re.compile(r"(?:我|本人|他|她|家里人|老人家?)?姓\s*(" + _SURNAME + r")(?=[，,。.！!？?\s]|$|" + _HAN + ")")
# A surname with a form of address: 王阿姨, 李师傅, 张大爷, 老张, 小李 (老/小 only before a surname and no more).
_TITLED = re.compile(
    r"(" + _SURNAME + r")(?=(?:先生|女士|小姐|阿姨|大爷|大妈|大娘|奶奶|爷爷|师傅|老师|大姐|大哥|姐姐|哥哥|叔叔|婶婶|伯伯|"
    r"书记|主任|网格长|网格员|管家|经理|队长|医生|护士|大夫|姐|哥|叔|婶|伯|总|工))"
)
_OLD_YOUNG = re.compile(r"(?:(?<![\u4e00-\u9fff])|(?<=[找跟和叫是让给问]))([老小])(?!师|时|房|高|年|区|车|路|商|单|全|明|成|文|安|常)(" + _SURNAME + r")")

# 18-digit ID numbers (the last may be X) and the old 15-digit ones; a run of digits is never cut in two.
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(?:[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
                      r"|[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3})(?![0-9A-Za-z])")
# Mainland mobiles (with +86/0086/86), landlines with an area code, and 7-8 digit local numbers after a phone cue.
_MOBILE = re.compile(r"(?<![\d])(?:(?:\+|00)?\s*86[\s-]*)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)")
_LANDLINE = re.compile(r"(?<![\d])(?:\(?0\d{2,3}\)?[\s-]*)[2-9]\d{2,3}[\s-]?\d{4}(?!\d)")
_LOCAL = re.compile(r"((?:电话|手机|座机|号码|联系方式|打|拨)\D{0,4}?)([2-9]\d{3}[\s-]?\d{3,4})(?!\d)")
# Licence plates: a province abbreviation, a letter, then 5 (or 6, new-energy) letters and digits.
_PLATE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领][A-HJ-NP-Z][·•.\s-]?"
                    r"[A-HJ-NP-Z0-9]{4,5}[A-HJ-NP-Z0-9挂学警港澳](?![A-Za-z0-9])")


def _fold(text: str) -> str:
    """Full-width letters and digits to ASCII (a masked text keeps the resident's own punctuation otherwise)."""
    return "".join(unicodedata.normalize("NFKC", ch) if ch.isalnum() and not ("\u4e00" <= ch <= "\u9fff") else ch
                   for ch in text)


class Masker:
    """Masks personal data; `names` are people's names known to the community (residents, staff)."""

    def __init__(self, names: Iterable[str] = (), places: Iterable[str] = ()) -> None:
        """`names`: people's names to mask wherever they occur; `places`: estate names and aliases, never taken
        for a name ("我是吉利花园的")."""
        known = sorted({n.strip() for n in names if n and len(n.strip()) >= 2}, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, known))) if known else None
        self._not_names = tuple(sorted({*_NOT_NAMES, *(p.strip() for p in places if p and p.strip())}, key=len,
                                       reverse=True))

    def mask(self, text: str) -> str:
        """The text with every phone, ID-card number, plate and name replaced by its placeholder."""
        if not text:
            return text or ""
        out = _fold(text)
        out = _ID_CARD.sub(ID_CARD, out)
        out = _MOBILE.sub(PHONE, out)
        out = _LANDLINE.sub(PHONE, out)
        out = _LOCAL.sub(lambda m: m.group(1) + PHONE, out)
        out = _PLATE.sub(PLATE, out)
        if self._known is not None:
            out = self._known.sub(NAME, out)
        out = _CUE.sub(lambda m: self._cued_name(m, out), out)
        out = _SURNAME_ONLY.sub(lambda m: m.group(0).replace(m.group(1), NAME), out)
        out = _TITLED.sub(NAME, out)
        out = _OLD_YOUNG.sub(lambda m: m.group(1) + NAME, out)
        return out

    def _cued_name(self, match: re.Match[str], text: str) -> str:
        if text.startswith(self._not_names, match.start(1)):
            return match.group(0)
        return match.group(0)[: match.start(1) - match.start(0)] + NAME


def mask(text: str, names: Iterable[str] = (), places: Iterable[str] = ()) -> str:
    """Mask one text (see Masker)."""
    return Masker(names, places).mask(text)
