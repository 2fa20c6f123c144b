"""Where to send a resident whose request the assistant does not handle, by the topic of the message (pure)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Tuple

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Referral:
    """One topic: the words that recognise it, and the polite line that says where to go instead."""

    topic: str  # a short English key, for tests and logs
    reply: str  # Simplified Chinese, one or two sentences
    words: str = ""  # regular expression searched in the folded text; empty never matches
    unless: str = ""  # regular expression that, when also found, leaves the message to a later entry

    def matches(self, folded: str) -> bool:
        """Whether this entry takes the already folded text."""
        if not self.words or re.search(self.words, folded) is None:
            return False
        return not (self.unless and re.search(self.unless, folded))


# First match wins, so the order is the specificity: emergencies (and pets before bites, so that a dog's vaccine is
# not a bite), then community matters (so that 发票 in 物业费发票 or 违章停车 in the estate stays with the community),
# then the services named by their own words (公积金, 医保, 驾照 …), then words that also turn up in other topics
# (学校, 户口本, 纠纷, 发票), chit-chat, and last anything of the government kind.
REFERRALS: Tuple[Referral, ...] = (
    Referral("fire", "如果现在着火或冒烟，请马上拨打 119，说清小区、楼号和着火的东西，先撤到安全的地方。",
             words=r"着火|起火|失火|火灾|冒烟|烧起来"),
    Referral("medical_emergency", "如果有人晕倒、胸痛或喘不上气，请马上拨打 120，说清地址和病人的情况。",
             words=r"晕倒|昏倒|晕过去|昏过去|昏迷|不省人事|摔倒.{0,4}起不来|急救|救护车|胸痛|胸口疼|心脏病犯|"
                   r"中风|喘不上气|没有?呼吸了|抽搐|大出血"),
    Referral("pet", "给宠物打疫苗、看病，请到正规的宠物医院（动物诊疗机构）；办养犬登记请到所在地派出所。",
             words=r"(狗|猫|宠物|(?<!狂)犬).{0,12}(疫苗|防疫|狂犬|打针|绝育|看病|生病|病了|不吃)|养犬|犬证|狗证|"
                   r"(疫苗|打针).{0,6}(狗|猫|宠物)",
             unless=r"(狗|猫|犬|宠物).{0,4}(咬|抓|挠)|被.{0,4}(狗|猫|犬)"),
    Referral("animal_bite", "被猫狗咬伤、抓伤，请先用肥皂水和清水冲洗伤口，尽快到医院的犬伤门诊（狂犬病暴露处置门诊）"
                            "打疫苗；不知道去哪家，可以拨打 12320 卫生健康热线问一问。",
             words=r"(狗|猫|犬|宠物).{0,4}(咬|抓|挠)|被.{0,4}(狗|猫|犬)|狂犬|犬伤"),
    Referral("police_emergency", "遇到偷盗、打架、诈骗这类违法犯罪或危险情况，请马上拨打 110 报警。",
             words=r"报警|抢劫|被抢|被偷|被盗|小偷|偷东西|打架|斗殴|打人(?!工)|持刀|闹事|诈骗|被骗|骗子|骗钱",
             unless=r"讲座|宣传|知识"),
    Referral("community", "小区里、邻里之间的事，社区工作人员可以帮您：换个说法把具体情况告诉我，或者回复“转人工”。",
             words=r"物业|居委会|社区办公室|社区工作人员|社区书记|网格员|网格长|楼道|楼长|业委会|业主群|车位|停车费|"
                   r"小区里|小区内|(?<![医法学])院里|院子里|邻居|邻里|对门|装修|居住证明|义诊|志愿者|红管家|快递柜|"
                   r"单元门|充电桩|低保|残疾证|高龄补贴|高龄津贴|困难补助"),
    Referral("provident_fund", "公积金的提取、贷款和查询，请拨打 12329 住房公积金服务热线，或到公积金管理中心的服务网点办理。",
             words=r"公积金|(?<!\d)12329(?!\d)"),
    Referral("medical_insurance", "医保报销、医保卡和异地就医的事，请拨打 12393 医保服务热线，或到区医保中心的窗口办理。",
             words=r"医保|医疗保险|异地就医|门诊特殊病|报销.{0,4}(医药费|药费|住院费|看病)"),
    Referral("traffic", "交通违章、罚款、驾驶证和车辆上牌年检的事，请用“交管12123”app查询办理，或者去车管所；"
                        "遇到交通事故请拨打 122。",
             words=r"违章|违停|违法停车|交通违法|扣分|罚单|驾照|驾驶证|行驶证|车管|上牌|车牌|号牌|年检|年审|限号|限行|"
                   r"交通事故|追尾|剐蹭|撞车|交警|(?<!\d)12123(?!\d)",
             unless=r"电梯|燃气|煤气"),
    Referral("immigration", "护照、港澳台通行证和签注，请到区公安分局的出入境接待大厅办理；要带的材料可以先拨打 12367 "
                            "国家移民管理局服务热线问清楚。",
             words=r"护照|通行证|往来港澳|往来台湾|签注|出入境|签证"),
    Referral("health", "打疫苗、体检和家庭医生签约，请到社区卫生服务中心咨询办理；卫生健康方面的政策可以拨打 12320。",
             words=r"疫苗|接种|预防针|体检|家庭医生|签约医生|慢病|慢性病|健康档案|社区卫生|卫生服务中心|卫生服务站|"
                   r"社区医院|孕检|产检|两癌筛查|(?<!\d)12320(?!\d)"),
    Referral("labour", "拖欠工资、劳动合同和工伤的事，可以拨打 12333 反映，或到区劳动保障监察部门投诉、"
                       "到区劳动人事争议仲裁院申请仲裁。",
             words=r"欠薪|拖欠.{0,6}(工资|工钱)|(工资|工钱).{0,6}(不给|不发|没发|拖欠|克扣|要不回来)|不发工资|劳动仲裁|"
                   r"劳动合同|劳动纠纷|劳动监察|辞退|开除|经济补偿|加班费|工伤"),
    Referral("employment", "找工作、失业登记和职业技能培训，可以拨打 12333 人社服务热线咨询，或到区里的公共就业服务机构。",
             words=r"找工作|找个工作|找份工作|工作介绍|介绍工作|招聘|就业|失业登记|再就业|职业培训|技能培训"),
    Referral("social_security", "社保、养老金和退休手续的事，请拨打 12333 人社服务热线，或到区社会保险服务中心办理。",
             words=r"社保|社会保险|养老金|养老保险|退休金|退休工资|办退休|退休手续|失业金|失业保险|生育保险|人社|"
                   r"(?<!\d)12333(?!\d)"),
    Referral("marriage", "结婚、离婚登记请到区民政局的婚姻登记处办理，一般要提前预约，带好双方的身份证和户口本；"
                         "离婚谈不拢要起诉的，可以先拨打 12348 公共法律服务热线咨询。",
             words=r"结婚|离婚|婚姻登记"),
    Referral("transit", "公交、地铁的线路和首末班时间，可以看公交公司、地铁的官方app或公众号，也可以拨打 12345 咨询。",
             words=r"公交|地铁|轻轨|首班车|末班车|几路车|停运|换乘|公共交通"),
    Referral("railway", "火车票请在“铁路12306”app或官网购买、查询，也可以拨打 12306。",
             words=r"火车|高铁|动车|(?<!\d)12306(?!\d)"),
    Referral("education", "上学、学区划片和学费的事，请咨询孩子的学校或区教育局；中考、高考报名以市教育招生考试院的通知为准。",
             words=r"学区|划片|入学|上学|升学|学费|择校|转学|学籍|幼儿园|入园|托班|小学|初中|高中|中考|高考|补习|补课|"
                   r"培训班|辅导班|学校|教育局|招生"),
    Referral("household", "户口、身份证、居住证和无犯罪记录证明，请到派出所的户籍窗口办理；遇到紧急情况请拨打 110。",
             words=r"户口|户籍|落户|迁户|身份证|居住证(?!明)|无犯罪|派出所|暂住证"),
    Referral("express", "查快递请用快递公司的app或官网；快递丢了、坏了先找快递公司，解决不了可以拨打 12305 邮政业申诉电话。",
             words=r"快递|包裹|物流"),
    Referral("electricity", "电费、停电和电表的事，请拨打 95598 国家电网供电服务热线，也可以在“网上国网”app上查询缴费。",
             words=r"电费|停电|电表|供电|国家电网|(?<!\d)95598(?!\d)"),
    Referral("telecom", "话费、流量和宽带的事，请找您的运营商：中国移动 10086、中国联通 10010、中国电信 10000。",
             words=r"话费|流量|宽带|手机卡|电话卡|套餐|携号转网|手机信号"),
    Referral("heating", "暖气费、报停和暖气不热，请找供热单位（报修电话在供热缴费单上），也可以拨打 12345 反映。",
             words=r"暖气|供暖|供热|取暖费"),
    Referral("consumer", "买东西、网购退货和商家纠纷，先找商家或平台客服；协商不成，可以拨打 12315 或在“全国12315平台”投诉。",
             words=r"网购|退货|退款|假货|投诉商家|商家|商场|超市|消费者|维权|缺斤短两|质量问题|售后|客服电话|"
                   r"(?<!\d)12315(?!\d)"),
    Referral("legal", "继承、借钱不还和各种纠纷，可以到法院咨询立案；拿不准怎么办，可以先拨打 12348 公共法律服务热线免费咨询。",
             words=r"纠纷|起诉|打官司|官司|法院|律师|法律援助|法律咨询|遗嘱|继承|遗产|欠钱不还|借钱不还|借条|"
                   r"(?<!\d)12348(?!\d)"),
    Referral("tax", "个税和发票的事要找税务部门：可以在“个人所得税”app上办理，也可以拨打 12366 纳税缴费服务热线咨询。",
             words=r"个税|个人所得税|所得税|退税|纳税|报税|缴税|交税|税务|税费|发票|开票|(?<!\d)12366(?!\d)"),
    Referral("chitchat", "这个我可不在行 😊 我是社区里帮大家办事的小助手。",
             words=r"天气|下雨|下雪|刮风|气温|几度|雾霾|空气质量|笑话|绕口令|唱歌|唱首|放首歌|歌曲|写首诗|作诗|讲个故事|"
                   r"电视剧|电影|综艺|象棋|围棋|麻将|扑克|股票|炒股|基金|汇率|理财|彩票|双色球|菜谱|怎么做|做法|好吃|"
                   r"饭馆|餐厅|外卖|减肥|首富|新闻|世界杯|国足|球赛|翻译|作文|闹钟|对象|相亲|红包|几号|星期几|几点了|"
                   r"过年|春节|生肖|旅游|好玩|景点|钓鱼|泡澡|购物|便宜|打车|出租车|网约车|加油站|机票|航班|房价|二手房|"
                   r"租房|中介|房贷|买房|卖房|家政|搬家|网店|吃什么|正宗|一斤|英语|单词|等于几|天津话|属相|什么年|你喜欢|你会|"
                   r"聊天|无聊"),
    Referral("government", "这类事情可以拨打 12345 政务服务便民热线，他们会告诉您找哪个部门办；也可以在“津心办”app上查办事指南。",
             words=r"办理|手续|证明|证件|政策|补贴|申请|审批|政府|部门|窗口|投诉|举报|热线|盖章|材料|公务员|事业单位|"
                   r"噪音|扰民|(?<!\d)12345(?!\d)"),
)

# Nothing matched: an apology, and the one number that finds the right office for anything official.
UNKNOWN = Referral("unknown", "抱歉，这件事红管家帮不上忙。要是需要找政府部门办事，可以拨打 12345 政务服务便民热线问一问。")


def fold(text: str) -> str:
    """Full-width to half-width, lower case, no spaces (dictated text is spaced at random)."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text or "").lower())


def referral_for(text: str) -> Referral:
    """The first entry of REFERRALS that takes the message, or UNKNOWN."""
    folded = fold(text)
    return next((r for r in REFERRALS if r.matches(folded)), UNKNOWN)
