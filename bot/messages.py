"""User-facing Chinese texts that depend on data (static ones live in domain.yml)."""

from __future__ import annotations

import datetime as dt
from typing import List, Optional, Sequence

from bot import address as addr
from bot.address_reply import missing_parts, offered_suggestion

KIND_LABELS = {"leak": "漏水报修", "repair": "设施报修", "help": "生活帮办", "feedback": "意见建议"}
# How a resident sees each lifecycle state (bot/lifecycle.py has the staff's short labels).
STATUS_LABELS = {"open": "已受理，等待派单", "assigned": "已派单", "in_progress": "处理中",
                 "resolved": "已办结，待您确认", "closed": "已关闭", "cancelled": "已取消"}
WEEKDAYS = "一二三四五六日"

# Fixed replies sent by custom actions (the ones sent by rules live in domain.yml).
ASK_ADDRESS = "请告诉我您的详细地址：小区、几号楼、几单元、门牌号，例如：吉利花园3号楼2单元501。"
ASK_REPAIR_ADDRESS = "请问是哪里的设施坏了？告诉我小区和楼号就行，例如：吉利花园1号楼（楼道里的设施不用说门牌号）。"
ASK_PHONE = "请留一个能联系到您的电话号码（手机或座机）。"
ASK_CONTACT_NAME = "请问怎么称呼您？报名需要您的姓名。"
INVALID_PHONE = "这个号码好像不对。手机号是11位数字，座机请带区号（如022-23456789），请再发一次。"
INVALID_TEAM = "没找到这支队伍。可以回复序号（1-7）、颜色（如“黄色”）或队名（如“邻里互助”）。"
INVALID_NAME = "请告诉我您的姓名（不超过20个字），例如：王秀英。"
# An address (or other detail) outside any form that corrects nothing.
INFORM_WITHOUT_CONTEXT = "收到。请问您需要办理什么事呢？比如“报修”“查义诊”“报名志愿者”“查进度”。"
TICKET_FAILED = "抱歉，系统刚才没能保存您的信息，什么都没有提交。请稍后再试，或回复“转人工”。"
NO_OPEN_TICKETS = "您目前没有未办结的工单。需要报修的话直接告诉我哪里出了问题就行。"
NO_CLINICS = "近期还没有安排义诊。有新活动会在社区群里通知，也可以过几天再来问我。"
HANDOFF = "好的，已通知社区值班工作人员，他们会在这里直接回复您，请稍等。工作人员处理期间，小助手先不说话了。"
OFFER_HANDOFF = "还是没能理解，真抱歉。需要我帮您转接社区值班工作人员吗？回复“转人工”就行。"
FALLBACK_OPTIONS = "抱歉，我没太明白。您是想办下面哪件事？点选或换个说法再说一次都可以："
WHAT_I_CAN_DO = "红管家能帮您办的是：报修漏水、设施报修、查义诊、报名志愿者、查工单进度、生活帮办和意见建议。"

# Words for each missing part of an address in a question ("吉利花园5号楼，几单元几号？").
_MISSING_WORDS = {"community": "哪个小区", "building": "几号楼", "unit": "几单元", "room": "几号"}
ADDRESS_NOT_UNDERSTOOD = "抱歉，我没看出地址。"
PROFILE_NOT_UNDERSTOOD = "抱歉，我没明白。"
PROFILE_YES_OR_NO = "回复“是”就用这些信息，回复“不是”重新填写。"
OFFER_PERSON = "也可以点“转人工”，请工作人员帮您。"
HANDOFF_AFTER_MISSES = ("抱歉，我一直没弄明白，给您添麻烦了。已请社区值班工作人员来帮您，他们会在这里直接回复您，请稍等。"
                        "工作人员处理期间，小助手先不说话了。")


def _range(numbers: Sequence[int], unit: str) -> str:
    """1..12 -> "1-12号楼"; gaps are listed."""
    ordered = sorted(numbers)
    if ordered and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}{unit}" if len(ordered) > 1 else f"{ordered[0]}{unit}"
    return "、".join(f"{n}{unit}" for n in ordered)


def address_taken(label: str) -> str:
    """Repeats the address just taken, so that a wrong part can be corrected at once."""
    return f"好的，地址是{label}（不对的话直接告诉我，比如“不对，是4号楼”）。"


def address_question(check: addr.AddressCheck, estates: Sequence[addr.Estate], *, require_unit: bool,
                     require_room: bool) -> str:
    """One question for what the address still lacks, repeating what is known; a wrong part is named."""
    a = check.address
    estate = next((e for e in estates if e.name == a.community), None)
    known = a.label()
    suggestion = offered_suggestion(check)
    if check.problem == addr.AMBIGUOUS_COMMUNITY:
        return f"{known}在{'、'.join(check.candidates)}都有，请问是哪个小区？"
    if check.problem == addr.UNKNOWN_COMMUNITY:
        if suggestion is not None:
            return f"没有找到“{a.community}”这个小区，您说的是“{suggestion.label()}”吗？"
        return f"没有找到“{a.community}”这个小区。本社区有：{'、'.join(e.name for e in estates)}，请问是哪个小区？"
    if check.problem == addr.UNKNOWN_BUILDING:
        if suggestion is not None:
            return f"{a.community}没有{a.building}号楼，您说的是“{suggestion.label()}”吗？"
        have = f"（有{_range(estate.buildings, '号楼')}）" if estate else ""
        return f"{a.community}没有{a.building}号楼{have}，请问是几号楼？"
    if check.problem == addr.UNKNOWN_UNIT:
        have = f"（有{_range(range(1, estate.units + 1), '单元')}）" if estate else ""
        return f"{a.community}{a.building}号楼没有{a.unit}单元{have}，请问是几单元？"
    if check.problem == addr.UNKNOWN_ROOM:
        have = f"（{estate.floors}层，每层{estate.rooms_per_floor}户，例如301）" if estate else ""
        return f"{a.community}{a.building}号楼没有{a.room}室{have}，请问门牌号是多少？"
    missing = missing_parts(a, require_unit=require_unit, require_room=require_room)
    if a.is_empty() or not missing:
        return ASK_REPAIR_ADDRESS if not (require_unit or require_room) else ASK_ADDRESS
    if missing == ("room",):
        ask = "门牌号是多少？"
    elif missing == ("unit",):
        ask = "是几单元？"
    else:
        ask = ("是" if missing[0] == "community" else "") + "".join(_MISSING_WORDS[p] for p in missing) + "？"
    return f"{known}，{ask}"


def ticket_receipt(number: str, kind: str, priority: str, groups: Sequence[str], people: Sequence[str], *,
                   help_group: Optional[str] = None, night_staff: Sequence[str] = (),
                   pause_group: Optional[str] = None) -> str:
    """What the resident is told after a ticket is opened: exactly the groups and people that were told."""
    lines = [f"已为您登记{KIND_LABELS.get(kind, '工单')}，工单号：{number}。"]
    if priority == "urgent":
        lines.append("已按【紧急】处理，")
    who = "志愿者" if kind == "help" else "工作人员"
    if groups:
        reminded = f"，并已提醒{'、'.join(people)}" if people else ""
        lines.append(f"已通知{'、'.join(groups)}{reminded}，{who}会尽快电话联系您"
                     f"{'' if kind == 'help' else '、上门处理'}。")
    else:
        lines.append(f"社区{who}会尽快电话联系您。")
    if help_group:
        lines.append(f"您的情况我们也告诉了邻里互助志愿者（{help_group}），他们会多关照您。")
    if night_staff:
        lines.append(f"现在是夜间，已同时通知{'、'.join(night_staff)}。")
    if pause_group:
        lines.append(f"我们也已在{pause_group}里提醒楼上邻居暂停用水，避免继续返水。")
    lines.append("查询进度请回复“查进度”或发送工单号。")
    return "".join(lines)


def feedback_receipt(number: str, groups: Sequence[str]) -> str:
    """What the resident is told after a suggestion or complaint is filed."""
    where = "、".join(groups) or "社区办公室"
    return f"谢谢您的意见！已转给{where}，编号 {number}，工作人员会认真研究并给您回复。"


def ticket_line(number: str, kind: str, status: str, handler: str, created: dt.datetime, address: str,
                last_note: Optional[str] = None) -> str:
    """One ticket in a status list."""
    where = f"，{address}" if address else ""
    note = f"｜最新进展：{last_note}" if last_note else ""
    return (f"{number}｜{KIND_LABELS.get(kind, kind)}{where}｜{STATUS_LABELS.get(status, status)}"
            f"｜负责人：{handler}｜{created:%m月%d日 %H:%M}登记{note}")


def clinic_line(title: str, day: dt.date, start: str, end: str, place: str, services: str, bring: str) -> str:
    """One clinic event in a list."""
    return (f"📅 {day.month}月{day.day}日（周{WEEKDAYS[day.weekday()]}）{start}-{end} {title}\n"
            f"地点：{place}\n项目：{services}\n请携带：{bring}")


def ticket_card(*, number: str, kind: str, priority: str, address: str, grid: Optional[str], contact: str,
                description: str, facility: Optional[str], link: Optional[str] = None,
                flags: Sequence[str] = ()) -> str:
    """WeCom markdown for a new ticket (phones already masked); `link` is its console page."""
    head = '<font color="warning">【紧急】</font>' if priority == "urgent" else ""
    lines = [f"### {head}{KIND_LABELS.get(kind, '工单')} {number}",
             f"> 地址：{address}", f"> 联系人：{contact}"]
    if facility:
        lines.append(f"> 设施：{facility}")
    lines.append(f"> 情况：{description}")
    if grid:
        lines.append(f"> 网格：{grid}")
    for flag in flags:
        lines.append(f'> <font color="warning">{flag}</font>')
    lines.append(f"请尽快联系居民处理：[在工作台接单]({link})" if link else "请尽快联系居民处理，处理后在工作台更新状态。")
    return "\n".join(lines)


def water_pause_notice(community: str, building: int, unit: Optional[int]) -> str:
    """WeCom markdown asking a building to pause water use during a drain blockage."""
    where = f"{community}{building}号楼" + (f"{unit}单元" if unit else "")
    return (f"### 💧 暂停用水提醒\n{where}的邻居们：本楼下水管道出现堵塞返水，"
            "维修人员正在赶来。请大家暂时不要使用洗衣机、淋浴和大量排水，疏通后会再通知。谢谢配合！")


def ticket_cancelled_card(number: str, address: str) -> str:
    """WeCom markdown telling staff a ticket was cancelled by the resident."""
    return f"### 工单已取消 {number}\n> 地址：{address or '（未提供）'}\n居民已自行取消，无需再上门。"


def address_corrected_card(number: str, before: str, after: str, grid: Optional[str], link: str) -> str:
    """WeCom markdown telling the groups that had a ticket that the resident corrected its address."""
    lines = [f"### 工单地址更正 {number}", f"> 原地址：{before or '（未提供）'}",
             f'> 新地址：<font color="warning">{after}</font>']
    if grid:
        lines.append(f"> 网格：{grid}")
    lines.append(f"居民刚更正了地址，以新地址为准，此前的通知作废：[查看工单]({link})")
    return "\n".join(lines)


def address_corrected(number: str, address: str, groups: Sequence[str]) -> str:
    """The resident's reply when their correction was taken."""
    told = f"，已告知{'、'.join(groups)}" if groups else ""
    return f"好的，工单 {number} 的地址已改为：{address}{told}。还有别的要改的，直接告诉我。"


def address_not_corrected(number: str, address: str) -> str:
    """The resident's reply when the corrected address is not one of the community's homes."""
    return (f"工单 {number} 的地址没有改：没有找到“{address}”。请说完整的地址，"
            "例如“不对，是吉利花园4号楼2单元301”，或回复“转人工”。")


def volunteer_card(team: str, name: str, masked_phone: str) -> str:
    """WeCom markdown telling a team lead about a new volunteer."""
    return f"### 新志愿者报名\n> 队伍：{team}\n> 姓名：{name}\n> 电话：{masked_phone}\n请队长联系新队员。"


def handoff_card(sender_id: str, last_message: str, link: str) -> str:
    """WeCom markdown asking the duty staff to take over a conversation in the console's handoff inbox."""
    return (f"### 居民请求转人工\n> 会话：{sender_id}\n> 最后一句：{last_message or '（无）'}\n"
            f"请值班人员接手：[打开转人工收件箱]({link})，处理完后点“交还助手”。")


# Staff-side cards about a ticket's lifecycle (WeCom markdown; `link` is the ticket's console page).
def ticket_assigned_card(number: str, address: str, assignee: str, by: str, link: str) -> str:
    """A ticket was given to someone."""
    return f"### 工单已派单 {number}\n> 地址：{address or '（未提供）'}\n> 负责人：{assignee}（{by}派单）\n[查看工单]({link})"


def ticket_returned_card(number: str, address: str, by: str, reason: str, link: str) -> str:
    """A ticket came back to the grid leader for someone else to take."""
    return (f"### 工单被退回 {number}\n> 地址：{address or '（未提供）'}\n> 退回人：{by}\n> 原因：{reason}\n"
            f"请网格长重新派单：[打开工单]({link})")


def ticket_reopened_card(number: str, address: str, link: str) -> str:
    """The resident says the problem is not fixed."""
    return (f"### ⚠️ 居民反映没修好 {number}\n> 地址：{address or '（未提供）'}\n工单已重新打开，"
            f"请重新派单处理：[打开工单]({link})")


def escalation_card(number: str, kind: str, address: str, level: str, waited: str, link: str) -> str:
    """A ticket waited too long: nobody accepted it, or it is past its deadline."""
    what = "无人接单" if level == "unaccepted" else "超过办结时限"
    return (f'### <font color="warning">【催办】{what}</font> {KIND_LABELS.get(kind, "工单")} {number}\n'
            f"> 地址：{address or '（未提供）'}\n> 已等待：{waited}\n请立即处理：[打开工单]({link})")


def night_duty_card(number: str, address: str, link: str, flags: Sequence[str] = ()) -> str:
    """An urgent ticket (or a vulnerable resident's leak) at night, for the staff on the night roster."""
    lines = [f'### <font color="warning">【夜间紧急】</font>工单 {number}', f"> 地址：{address or '（未提供）'}"]
    lines.extend(f'> <font color="warning">{flag}</font>' for flag in flags)
    lines.append(f"网格长已收到通知；请值班人员留意并协助：[打开工单]({link})")
    return "\n".join(lines)


def vulnerable_resident_card(number: str, kind: str, address: str, situation: str, link: str) -> str:
    """Tells the neighbourhood-help team that a vulnerable resident opened a ticket."""
    return (f'### <font color="warning">⚠ 需关照的居民</font> {KIND_LABELS.get(kind, "工单")} {number}\n'
            f"> 地址：{address or '（未提供）'}\n> 情况：{situation}\n"
            f"工作人员已收到工单；请邻里互助志愿者联系居民，看看是否需要帮忙：[查看工单]({link})")


# What residents are told as their ticket moves (WeChat customer-service or template messages).
def resident_assigned(number: str, handler: str, when: str) -> str:
    """Someone took the resident's ticket."""
    return f"您的工单 {number} 已由{handler}负责，{when}。如有变化会再告诉您。"


def resident_reassigned(number: str, handler: str, when: str) -> str:
    """Someone else will come."""
    return f"您的工单 {number} 改由{handler}负责，{when}。给您添麻烦了。"


def resident_returned(number: str) -> str:
    """The ticket is waiting for a new handler."""
    return f"您的工单 {number} 正在重新安排处理人员，安排好后马上通知您。"


def resident_resolved(number: str, resolution: str) -> str:
    """The ticket was resolved; ask for a rating."""
    ending = "" if resolution.endswith(("。", "！", "!", ".", "？", "?")) else "。"
    return (f"您的工单 {number} 已办结：{resolution}{ending}\n满意吗？回复1-5分（5分最满意），也可以在分数后面写一句意见。"
            "如果问题还在，请回复“没修好”，我们会重新安排。")


REMINDERS_OFF = "好的，已为您退订社区通知（安全提示、义诊、停水等）。想再收到时回复“恢复提醒”。工单进度照常通知您。"
REMINDERS_ON = "好的，已恢复社区通知提醒。"
RATING_THANKS = "谢谢您的评价！工单已确认办结。以后有需要随时找我。"
RATING_LOW = "谢谢您的评价，我们会把您的意见转给社区，改进服务。"
REOPENED = "抱歉没能一次修好！工单已重新打开，网格长会重新安排人员尽快处理。"

EMPTY_MESSAGE = "您好像发了一条空消息。有什么需要帮忙的？可以直接说，比如“家里漏水了”“最近有义诊吗”。"
SENT_TOO_FAST = ("您发得太快了，我一下子处理不过来。请歇一分钟再发；刚才这几条我没有记下，"
                 "要紧的事请一分钟后再说一遍。")


def too_many_open_tickets(numbers: List[str]) -> str:
    """The answer when a resident already has as many tickets in hand as one may have: which ones, and what to do."""
    return (f"您已经有{len(numbers)}张工单正在处理中（{'、'.join(numbers)}），这次先没有登记新的。"
            "等其中一张办完再报，或者回复“查进度”看看进展；情况紧急请回复“转人工”。")


SYSTEM_BUSY = "系统繁忙，请稍后再试。您刚才这句还没有办理，也没有记下，请过一两分钟再发一次。"
TURN_FAILED = "抱歉，系统刚才出了点问题，您的消息没有处理完。请稍后再发一次，或回复“转人工”。"

# WeChat Official Account channel.
# {community_name}: the community whose account it is (the shared account's: the deployment's first community).
WECHAT_WELCOME = ("感谢关注！我是{community_name}的“红管家”小助手 🏠\n"
                  "我可以帮您：报修漏水、设施报修、查义诊、报名志愿者、查工单进度、生活帮办、提意见建议；"
                  "需要找工作人员时说“转人工”就行。\n"
                  "直接发文字或语音告诉我，也可以点下方菜单。")


def wechat_welcome(community_name: str) -> str:
    """The reply to a new follower, naming the community."""
    return WECHAT_WELCOME.format(community_name=community_name)


WECHAT_VOICE_UNRECOGNISED = "抱歉，这条语音我没听清。麻烦您打字告诉我，比如“家里漏水了”“最近有义诊吗”。"
WECHAT_IMAGE_PENDING = ("收到您的照片，已先为您保存。您现在还没有办理中的工单，接下来登记工单时会把照片一并附上。"
                        "请告诉我是什么问题，比如“1号楼消防柜玻璃碎了”。")
WECHAT_IMAGE_FAILED = "抱歉，照片没能保存下来。请稍后再发一次，或直接用文字描述情况。"
WECHAT_UNKNOWN_MENU = "这个菜单项暂时用不了，真抱歉。您可以直接发文字告诉我需要办什么，比如“报修”“查进度”。"
WECHAT_UNSUPPORTED = "抱歉，这类消息我还看不懂。请发文字或语音告诉我需要办什么，比如“报修”“查义诊”“转人工”。"
WECHAT_OPTIONS_HINT = "（回复数字即可选择）"


def wechat_image_attached(ticket_number: str) -> str:
    """Tells the resident which ticket their photo was attached to."""
    return f"收到您的照片，已附到工单 {ticket_number}，处理人员可以直接看到。"


def wechat_location_hint(label: str) -> str:
    """Offers a shared location as an address hint and asks for the rest of the address."""
    if label.strip():
        return f"收到您的位置：{label.strip()}。请再告诉我几号楼几单元几室，例如：3号楼2单元501。"
    return "收到您的位置。请再告诉我小区名称和几号楼几单元几室，例如：吉利花园3号楼2单元501。"

# The WeChat-style web chat page (what WeChat itself shows when an account's server fails to answer).
WEBCHAT_SERVICE_UNAVAILABLE = "该公众号暂时无法提供服务，请稍后再试"
