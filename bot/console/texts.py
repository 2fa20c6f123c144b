"""The console's user-facing Chinese text that code chooses (page wording lives in the templates)."""

from __future__ import annotations

ROLE_LABELS = {
    "grid_member": "网格员",
    "grid_leader": "网格长",
    "property_manager": "物业管家",
    "duty": "值班人员",
    "secretary": "社区书记",
    "admin": "管理员",
    "team_lead": "志愿服务队队长",
}

WRONG_CREDENTIALS = "账号或密码不正确。"
LOCKED_UNTIL = "密码连续输错次数过多，账号已暂时锁定，请于 {until} 后再试。"
MISSING_CREDENTIALS = "请输入账号和密码。"

# Titles and messages of the error page (and the API's "error" field), by status.
ERROR_TITLES = {
    400: "提交的内容有误",
    401: "请先登录",
    403: "无法完成操作",
    404: "页面不存在",
    405: "不支持的请求方式",
    409: "状态已变化",
    413: "提交的内容太大",
    500: "系统出错了",
    503: "系统暂时不可用",
}
CSRF_REJECTED = "页面已过期或请求来源不明，操作没有执行。请刷新页面后重试。"
NOT_ALLOWED = "您没有权限进行这项操作。"
NOT_FOUND = "没有找到您要的内容。"
INVALID_STATE = "这条记录的状态已经变化，操作没有执行。请刷新后查看。"
INVALID_INPUT = "提交的内容有误，请检查后重试。"
INVALID_FIELD = "“{field}”填写有误，请检查后重试。"
SERVER_ERROR = "系统出错了，操作可能没有完成。请稍后重试；问题持续请联系社区管理员。"
UNAVAILABLE = "系统暂时不可用，请稍后重试。"
API_UNAUTHORIZED = "需要有效的访问令牌（Authorization: Bearer …）。"


def role_label(role: str) -> str:
    """The Chinese name of a staff role (the role key itself when unknown)."""
    return ROLE_LABELS.get(role, role)

# A ticket action the ticket's state no longer allows (e.g. two workers accepting at once).
TICKET_TAKEN = "工单已被接单（当前负责人：{holder}），您的操作没有执行。"
TICKET_STATE_CHANGED = "工单当前状态是“{status}”，不能{action}，操作没有执行。请刷新后查看。"


def ticket_conflict(action: str, action_label: str, status_label: str, holder: str) -> str:
    """Why an action on a ticket was refused because of its state."""
    if action in ("accept", "assign") and holder:
        return TICKET_TAKEN.format(holder=holder)
    return TICKET_STATE_CHANGED.format(status=status_label, action=action_label)
