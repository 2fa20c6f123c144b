"""A request the assistant does not handle is referred to the right office by its topic."""

import re

import pytest

from bot.referral import REFERRALS, UNKNOWN, referral_for

# Each topic, the service numbers its reply must give, and messages a resident might write about it.
CASES = {
    "education": ({"区教育局"}, [
        "请问孩子明年上小学，我们家属于哪个学区？",
        "想咨询一下幼儿园入园报名需要准备哪些材料",
        "您好，我家孩子今年九月份要升初中了，户口和房子都在吉利花园，想问一下划片的学校是哪所",
        "孩子补习班学费多少",
        "高考报名什么时候开始",
    ]),
    "traffic": ({"12123", "122"}, [
        "违章罚款怎么交",
        "您好，我的驾驶证下个月就到期了，请问换证需要带什么",
        "上周我开车去河西区办事，在路口被拍了，想问一下这个交通违法要扣几分",
        "电动车上牌去哪",
        "天津今天限号限几",
    ]),
    "employment": ({"12333", "公共就业服务机构"}, [
        "有没有工作介绍",
        "我今年四十八岁，原来的厂子关了，现在想找份工作，听说政府有免费的技能培训，去哪里报名",
    ]),
    "heating": ({"供热单位", "12345"}, [
        "今年的取暖费什么时候交",
        "我们家的暖气从上周开始就一直不热，屋里才十五度，请问该找谁",
    ]),
    "social_security": ({"12333"}, [
        "帮我查社保余额",
        "养老金什么时候涨",
        "我母亲今年五十五岁了，单位说让她自己去办退休手续，请问要去哪里办",
        "退休金怎么算的",
        "社保卡丢了怎么补办",
    ]),
    "medical_insurance": ({"12393"}, [
        "医保卡密码忘了怎么办",
        "我父亲上个月在北京住院做了手术，花了不少钱，回来以后想问问异地就医怎么报销",
    ]),
    "provident_fund": ({"12329"}, [
        "公积金怎么提取",
        "您好，我去年年底已经退休了，单位那边说之前交的住房公积金可以全部取出来，想问一下具体怎么办",
    ]),
    "tax": ({"12366"}, [
        "个税怎么退",
        "请问个人所得税的专项附加扣除在哪里填报",
        "我在网上开了个小店，客人一直找我要，我想问一下个体户开发票去哪里开",
    ]),
    "health": ({"社区卫生服务中心", "12320"}, [
        "孩子该打第二针疫苗了，要带户口本吗",
        "请问六十五岁以上的老人每年免费体检在哪里做",
        "您好，我们家老人有高血压，子女都在外地，听说可以签家庭医生，想问问怎么签约",
    ]),
    "household": ({"派出所", "110"}, [
        "身份证丢了怎么补",
        "户口迁移怎么办",
        "我儿子在外地找了工作，用人单位让他开一个无犯罪记录证明，请问在哪里开",
        "外地来天津打工的，居住证怎么办理",
    ]),
    "immigration": ({"出入境", "12367"}, [
        "办护照去哪",
        "哪里能办港澳通行证",
        "下个月想带孙子去香港玩几天，通行证过期了，签注要怎么续",
    ]),
    "transit": ({"12345"}, [
        "地铁几点停运",
        "请问从我们社区门口坐几路车能到天津站，我们社区附近的公交站好像改了",
        "早上最早一班地铁几点发车",
    ]),
    "consumer": ({"12315"}, [
        "京东的客服电话是多少",
        "在网上买的羽绒服有质量问题，商家一直拖着不给退货，我该去哪里投诉",
        "楼下超市卖的鸡蛋缺斤短两，我想维权",
    ]),
    "labour": ({"12333"}, [
        "老板拖欠了我三个月的工资，一直不给，怎么办",
        "我在一家饭店干了两年，老板突然把我辞退了，也不给经济补偿，我想申请劳动仲裁",
    ]),
    "marriage": ({"婚姻登记处", "12348"}, [
        "结婚登记要带什么",
        "离婚手续怎么办",
    ]),
    "legal": ({"法院", "12348"}, [
        "亲戚借了我五万块钱三年了一直不还，手里有借条，我想起诉他",
        "我父亲去世了，没留遗嘱，房子的继承手续该怎么弄，有没有免费的法律援助",
    ]),
    "express": ({"12305"}, [
        "帮我查个快递到哪了",
        "我上周寄给女儿的包裹到现在还没到，快递公司也不管，去哪儿说理",
    ]),
    "electricity": ({"95598"}, [
        "帮我看看这个月的电费为嘛这么高",
        "今天下午我们那一片突然停电了，到现在还没来电，请问找谁",
    ]),
    "telecom": ({"10086", "10010", "10000"}, [
        "手机话费怎么查",
        "流量不够用了怎么办",
    ]),
    "railway": ({"12306"}, [
        "帮我买张去北京的火车票",
        "喂你好帮我查一下明天从天津西站到济南的火车票还有没有",
    ]),
    "pet": ({"宠物医院"}, [
        "狗狗打疫苗去哪",
        "我家猫不吃饭怎么办",
    ]),
    "animal_bite": ({"犬伤门诊", "12320"}, [
        "刚才在外面遛弯被一只流浪狗咬了一口，出血了",
        "打狂犬疫苗去哪打",
    ]),
    "police_emergency": ({"110"}, [
        "我刚才接到一个电话说我孙子出事了要我打钱，是不是被骗了",
        "我家电动车昨天晚上被偷了",
    ]),
    "fire": ({"119"}, ["对面那栋楼好像着火了，一直在冒烟"]),
    "medical_emergency": ({"120"}, ["我老伴刚才突然晕倒了，叫也叫不醒"]),
    "government": ({"12345"}, [
        "考公务员怎么报名",
        "请问新生儿的生育补贴怎么申请，需要哪些材料",
        "我们家旁边的工地天天晚上十二点还在施工，噪音太大了，想投诉",
    ]),
}
CHITCHAT = ["今天天气怎么样", "给我讲个笑话", "哪里买菜便宜", "推荐几部好看的电视剧", "红烧肉怎么做",
            "附近有好吃的饭馆吗", "去三亚的机票多少钱", "帮我写篇作文"]

# Messages about the community itself that carry a word of another topic; they stay with the community.
COMMUNITY = [
    ("物业费的发票在哪里开", "tax"),
    ("小区里总有外来车违章停车，把消防通道都堵了", "traffic"),
    ("楼上邻居天天半夜装修噪音特别大，想投诉", "government"),
    ("和对门邻居因为楼道堆杂物起了纠纷", "legal"),
    ("我想开一个居住证明，孩子上学用", "education"),
    ("我们家是低保户，听说有补贴，需要什么手续", "government"),
    ("社区办公室能帮忙开身份证的证明吗", "household"),
]
# Messages that name the community only in passing; the topic still decides.
IN_PASSING = [
    ("我们社区附近的地铁站几点停运", "transit"),
    ("社区卫生服务中心打疫苗要预约吗", "health"),
    ("我在红星社区住了二十年，想问问我的养老金为什么这个月少了", "social_security"),
    ("小区门口新开的那家超市卖过期食品", "consumer"),
]

SERVICE_NUMBERS = {"110", "119", "120", "122", "12123", "12305", "12306", "12315", "12320", "12329", "12333",
                   "12345", "12348", "12366", "12367", "12393", "95598", "10086", "10010", "10000"}


@pytest.mark.parametrize("topic,expected,text", [(topic, expected, text) for topic, (expected, texts) in CASES.items()
                                                 for text in texts])
def test_a_message_is_referred_by_its_topic(topic, expected, text) -> None:
    referral = referral_for(text)
    assert referral.topic == topic, text
    assert all(place in referral.reply for place in expected)


@pytest.mark.parametrize("text", CHITCHAT)
def test_chit_chat_gets_a_friendly_line_and_no_number(text) -> None:
    referral = referral_for(text)
    assert referral.topic == "chitchat"
    assert not re.search(r"\d{3,}", referral.reply)


@pytest.mark.parametrize("text,not_topic", COMMUNITY)
def test_a_community_matter_is_not_sent_elsewhere_by_a_word_it_shares(text, not_topic) -> None:
    referral = referral_for(text)
    assert referral.topic == "community" != not_topic
    assert "转人工" in referral.reply


@pytest.mark.parametrize("text,topic", IN_PASSING)
def test_naming_the_community_in_passing_does_not_change_the_referral(text, topic) -> None:
    assert referral_for(text).topic == topic


def test_the_keyword_is_found_late_in_a_long_message() -> None:
    opening = "您好，打扰了。我是吉利花园的老住户，今年七十多了，孩子们都不在身边，平时有什么事都是自己跑，" * 3
    assert referral_for(opening + "想问一下公积金怎么取出来").topic == "provident_fund"
    assert referral_for(opening + "最后想问问结婚登记去哪里").topic == "marriage"


def test_full_width_digits_and_dictation_spaces_are_folded() -> None:
    assert referral_for("１２１２３上怎么交罚款").topic == "traffic"
    assert referral_for("我 想 问 一 下 公 积 金 的 事").topic == "provident_fund"


def test_a_phone_number_is_not_mistaken_for_a_hotline() -> None:
    assert referral_for("我的电话是13812123456，帮我问问").topic != "traffic"


def test_a_message_without_a_known_topic_gets_an_apology_and_the_government_hotline() -> None:
    for text in ("", "嗯", "那个事怎么弄啊"):
        assert referral_for(text) is UNKNOWN
    assert "帮不上忙" in UNKNOWN.reply and "12345" in UNKNOWN.reply


def test_every_number_the_table_gives_is_a_mainland_service_number() -> None:
    for referral in (*REFERRALS, UNKNOWN):
        numbers = set(re.findall(r"\d{3,}", referral.reply))
        assert numbers <= SERVICE_NUMBERS, (referral.topic, numbers - SERVICE_NUMBERS)


def test_topics_are_unique_and_every_entry_can_match() -> None:
    topics = [r.topic for r in REFERRALS]
    assert len(topics) == len(set(topics))
    assert all(r.words for r in REFERRALS)
    every_case = {t for t in CASES} | {"chitchat", "community"}
    assert set(topics) == every_case  # each entry is exercised by a message above
