import { createRouter, createWebHashHistory } from 'vue-router'
import { MENU, homeFor, MANAGERS } from './menus'
import { role, signedIn } from './store'

const pages = {
  '/month': () => import('./views/MonthView.vue'),
  '/residents': () => import('./views/ResidentsView.vue'),
  '/import': () => import('./views/ImportView.vue'),
  '/review': () => import('./views/ReviewView.vue'),
  '/home-visits': () => import('./views/HomeVisitsView.vue'),
  '/passive': () => import('./views/PassiveView.vue'),
  '/exports': () => import('./views/ExportsView.vue'),
  '/workorders': () => import('./views/WorkordersBoardView.vue'),
  '/workorders/map': () => import('./views/WorkordersMapView.vue'),
  '/workorders/figures': () => import('./views/WorkordersFiguresView.vue'),
  '/workorders/points': () => import('./views/WorkorderPointsView.vue'),
  '/trends': () => import('./views/TrendsView.vue'),
  '/chain': () => import('./views/ChainView.vue'),
  '/audit': () => import('./views/AuditView.vue'),
}

const routes = [
  { path: '/login', component: () => import('./views/LoginView.vue'), meta: { public: true, title: '登录' } },
  ...MENU.map((item) => ({ path: item.path, component: pages[item.path], meta: { roles: item.roles, title: item.title } })),
  {
    path: '/residents/:id(\\d+)', component: () => import('./views/ResidentDetailView.vue'),
    meta: { roles: MANAGERS, title: '居民详情', menu: '/residents' },
  },
  {
    path: '/residents/:id(\\d+)/enrol', component: () => import('./views/EnrolView.vue'),
    meta: { roles: MANAGERS, title: '人脸录入', menu: '/residents' },
  },
  {
    path: '/workorders/:id(\\d+)', component: () => import('./views/WorkorderCaseView.vue'),
    meta: { roles: MANAGERS, title: '工单详情', menu: '/workorders' },
  },
  { path: '/forbidden', component: () => import('./views/ForbiddenView.vue'), meta: { title: '无权访问' } },
  { path: '/:rest(.*)*', redirect: () => (signedIn() ? homeFor(role()) : '/login') },
]

export const router = createRouter({ history: createWebHashHistory(), routes })

router.beforeEach((to) => {
  if (to.meta.public) return signedIn() && to.path === '/login' ? homeFor(role()) : true
  if (!signedIn()) return { path: '/login', query: { next: to.fullPath } }
  if (to.meta.roles && !to.meta.roles.includes(role())) return '/forbidden'
  return true
})

router.afterEach((to) => {
  document.title = `${to.meta.title || ''} · 智链社区工作台`
})
