"""Server-rendered pages of the authorization endpoint, in the miniapp's elder-friendly style.

Chinese, body text 20 px (≥ 18), main buttons 64 px tall (≥ 60), dark text on white and white
on deep blue (contrast > 7:1), errors said in words with an icon-free label, no script and no
pop-ups (DESIGN §5a). Every value is HTML-escaped.
"""

from __future__ import annotations

from html import escape

_STYLE = """
*{box-sizing:border-box}
body{margin:0;background:#ffffff;color:#1a1a1a;font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
font-size:20px;line-height:1.6}
main{max-width:560px;margin:0 auto;padding:24px 20px 40px}
h1{font-size:30px;line-height:1.4;margin:8px 0 20px}
p{margin:0 0 26px}
.who{font-size:22px;font-weight:bold}
ul{padding-left:1.2em;margin:0 0 26px}
li{margin-bottom:14px}
label{display:block;font-size:22px;font-weight:bold;margin-bottom:8px}
input[type=tel],input[type=text]{width:100%;min-height:60px;font-size:26px;padding:8px 14px;border:2px solid #1a1a1a;
border-radius:8px;color:#1a1a1a;background:#ffffff;margin-bottom:22px;letter-spacing:2px}
button{display:block;width:100%;min-height:64px;font-size:24px;font-weight:bold;border-radius:10px;margin:0 0 18px;
cursor:pointer}
.primary{background:#0b4fb3;color:#ffffff;border:2px solid #0b4fb3}
.secondary{background:#ffffff;color:#1a1a1a;border:2px solid #1a1a1a}
.error{border:2px solid #a3160e;color:#a3160e;background:#ffffff;padding:12px 14px;border-radius:8px;margin-bottom:22px}
.note{color:#333333;font-size:18px}
"""


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} - 智链</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _error_box(message: str | None) -> str:
    return f'<div class="error" role="alert">出错了：{escape(message)}</div>' if message else ""


def _csrf(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(csrf)}">'


def error_page(message: str, detail: str = "") -> str:
    extra = f'<p class="note">错误代码：{escape(detail)}</p>' if detail else ""
    return _layout("无法授权", f"<h1>无法完成授权</h1><p>{escape(message)}</p>{extra}"
                               "<p>请关闭此页，回到原来的网站重新操作。如需帮助，请联系社区工作人员。</p>")


def phone_page(*, client_name: str, action: str, csrf: str, phone: str = "", error: str | None = None) -> str:
    body = (
        f"<h1>登录智链</h1><p><span class=\"who\">{escape(client_name)}</span> 想查看您在智链的信息。"
        "请先用手机号登录，确认是您本人。</p>"
        f"{_error_box(error)}"
        f'<form method="post" action="{escape(action)}">{_csrf(csrf)}'
        '<label for="phone">手机号</label>'
        f'<input id="phone" name="phone" type="tel" inputmode="numeric" autocomplete="tel" maxlength="20" '
        f'value="{escape(phone)}" required>'
        '<button class="primary" type="submit">获取验证码</button></form>'
    )
    return _layout("登录", body)


def code_page(*, client_name: str, action: str, csrf: str, phone: str, minutes: int, error: str | None = None) -> str:
    body = (
        f"<h1>输入验证码</h1><p>验证码已发送到您的手机，{minutes} 分钟内有效。</p>"
        f"{_error_box(error)}"
        f'<form method="post" action="{escape(action)}">{_csrf(csrf)}'
        f'<input type="hidden" name="phone" value="{escape(phone)}">'
        '<label for="code">6 位验证码</label>'
        '<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" '
        'maxlength="6" required>'
        f'<button class="primary" type="submit">登录并继续</button></form>'
        f'<p class="note">正在为「{escape(client_name)}」授权。没有收到？请返回上一页重新获取。</p>'
    )
    return _layout("输入验证码", body)


def consent_page(*, client_name: str, client_host: str, scopes: list[tuple[str, str]], action: str, csrf: str) -> str:
    items = "".join(f"<li>{escape(text)}</li>" for _, text in scopes)
    body = (
        f"<h1>是否同意授权？</h1><p><span class=\"who\">{escape(client_name)}</span>"
        f"（{escape(client_host)}）请求使用您的以下信息：</p><ul>{items}</ul>"
        "<p class=\"note\">同意后可以随时在智链「我的 → 授权管理」中取消。</p>"
        f'<form method="post" action="{escape(action)}">{_csrf(csrf)}'
        '<button class="primary" type="submit" name="decision" value="allow">同意</button>'
        '<button class="secondary" type="submit" name="decision" value="deny">不同意</button></form>'
    )
    return _layout("授权确认", body)
