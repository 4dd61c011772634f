"""Names past ASCII, as Python allows them: a function, a global and a
thread named in French and Chinese (数据 is two columns wide per
character on a terminal), the thread's name longer than the viewer's
14-column thread column. Each function keeps blocks at its marked line.
"""
import threading

données = []


def répartir(n):
    for _ in range(n):
        données.append(bytearray(1000))  # UNI-FR


def 数据():
    for _ in range(300):
        données.append(bytearray(2000))  # UNI-ZH


t = threading.Thread(target=répartir, args=(500,), name="ouvrière-☃-数据-longue")
t.start()
t.join()
数据()
print("kept", len(données))
