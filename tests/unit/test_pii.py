"""Personal data is masked before a message leaves the database; what an admin needs to label it is kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.pii import ID_CARD, NAME, PHONE, PLATE, Masker, mask

PLACES = ("吉利花园", "吉利", "和顺里", "金穗园")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "建国淑芬刚丽明霞静伟芳娜敏军洋勇艳杰娟涛超秀英华玉兰桂珍志强海燕红梅"
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@pytest.mark.parametrize("text, expected", [
    ("我叫王建国，电话13812345678", f"我叫{NAME}，电话{PHONE}"),
    ("身份证号11010519491231002X，手机 138-1234-5678", f"身份证号{ID_CARD}，手机 {PHONE}"),
    ("车牌津A12345挡住了消防通道", f"车牌{PLATE}挡住了消防通道"),
    ("新能源车京AD12345占了车位", f"新能源车{PLATE}占了车位"),
    ("联系人：李淑芬 022-23456789", f"联系人：{NAME} {PHONE}"),
    ("有事打座机23456789", f"有事打座机{PHONE}"),
    ("+86 139 2000 1001 是我的号", f"{PHONE} 是我的号"),
    ("王阿姨家漏水了，找老张", f"{NAME}阿姨家漏水了，找老{NAME}"),
    ("本人姓欧阳，住吉利花园", f"本人姓{NAME}，住吉利花园"),
    ("１３８１２３４５６７８", PHONE),  # full-width digits
])
def test_personal_data_is_replaced_by_its_kind(text: str, expected: str) -> None:
    assert mask(text, places=PLACES) == expected


@pytest.mark.parametrize("text", [
    "我是吉利花园3号楼2单元501的业主，工单HG-20261128-0001还没人来",
    "我是高龄老人，一个人住，腿脚不好",
    "半小时了，老师说楼道灯还不亮",
    "请安排社区工作人员上门看看",
    "我是和顺里的，楼道里堆满了杂物",
    "老旧小区的电梯什么时候能修",
    "2026年11月28日下午3点停水",
])
def test_what_an_admin_needs_is_kept(text: str) -> None:
    assert mask(text, places=PLACES) == text


def test_known_names_are_masked_wherever_they_occur() -> None:
    masker = Masker(names=["孙丽", "何晓雨"])
    assert masker.mask("孙丽说明天来，何晓雨也在") == f"{NAME}说明天来，{NAME}也在"


names = st.builds(lambda s, g: s + g, st.sampled_from(SURNAMES), st.text(GIVEN, min_size=1, max_size=2))
mobiles = st.builds(lambda p, r: p + r, st.sampled_from(["13", "15", "17", "18", "19"]),
                    st.text("0123456789", min_size=9, max_size=9))
ids = st.builds(lambda area, y, m, d, seq, check: f"{area}{y}{m:02d}{d:02d}{seq}{check}",
                st.text("123456789", min_size=1, max_size=1).flatmap(
                    lambda a: st.text("0123456789", min_size=5, max_size=5).map(lambda r: a + r)),
                st.integers(1930, 2020), st.integers(1, 12), st.integers(1, 28),
                st.text("0123456789", min_size=3, max_size=3), st.sampled_from(list("0123456789X")))
plates = st.builds(lambda p, letter, rest: p + letter + rest, st.sampled_from(PROVINCES),
                   st.sampled_from("ABCDEFGHJK"), st.text(PLATE_CHARS, min_size=5, max_size=5))
landlines = st.builds(lambda head, rest: f"022-{head}{rest}", st.sampled_from("2345678"),
                      st.text("0123456789", min_size=7, max_size=7))
TEMPLATES = [
    "我叫{name}，住吉利花园3号楼2单元501，电话{mobile}，身份证{id}，车牌{plate}。",
    "联系人{name}，手机{mobile}；座机{landline}。{surname}阿姨家的车{plate}堵门了。",
    "您好，本人是{name}，身份证号码{id}，想给小区反映一下{plate}长期占用消防通道，回电{landline}",
    "{surname}师傅，我家里漏水，我姓{surname}，电话是{mobile}",
]


@settings(max_examples=300, deadline=None)
@given(name=names, mobile=mobiles, id_=ids, plate=plates, landline=landlines, template=st.sampled_from(TEMPLATES))
def test_messages_full_of_personal_data_come_out_with_none(name, mobile, id_, plate, landline, template) -> None:
    text = template.format(name=name, surname=name[0], mobile=mobile, id=id_, plate=plate, landline=landline)
    out = mask(text, places=PLACES)
    used = [v for key, v in (("{name}", name), ("{mobile}", mobile), ("{id}", id_), ("{plate}", plate),
                             ("{landline}", landline)) if key in template]
    for value in used:
        assert value not in out, (text, out)
    digits = "".join(ch for ch in out if ch.isdigit())
    assert mobile not in digits and id_[:17] not in digits and landline[4:] not in digits, out
    if "{surname}阿姨" in template or "{surname}师傅" in template or "姓{surname}" in template:
        assert f"{name[0]}阿姨" not in out and f"{name[0]}师傅" not in out and f"姓{name[0]}" not in out, out
    assert "吉利花园3号楼2单元501" in out or "吉利花园" not in template
